import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { jsonSchemaText, validatorSource } from './schema-codegen.js';

/** `npm run schema`: writes schema/devloop.schema.json and core/config/validator.generated.ts. */
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
writeFileSync(path.join(repo, 'schema/devloop.schema.json'), jsonSchemaText());
writeFileSync(path.join(repo, 'core/config/validator.generated.ts'), validatorSource());
console.log('wrote schema/devloop.schema.json and core/config/validator.generated.ts');
