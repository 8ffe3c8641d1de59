import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonSchemaText, validatorSource } from './schema-codegen.js';

const repo = path.resolve(import.meta.dirname, '../..');

describe('generated schema files', () => {
  it('are up to date with core/config/schema.ts (run `npm run schema` after changing it)', () => {
    expect(readFileSync(path.join(repo, 'schema/devloop.schema.json'), 'utf8')).toBe(jsonSchemaText());
    expect(readFileSync(path.join(repo, 'core/config/validator.generated.ts'), 'utf8')).toBe(validatorSource());
  });
});
