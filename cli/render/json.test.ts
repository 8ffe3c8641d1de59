import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { EVENT_SCHEMA_VERSION, jsonLinesRenderer } from './json.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

describe('JSON lines renderer', () => {
  it('prints one object per line carrying the schema version', () => {
    const out: string[] = [];
    const render = jsonLinesRenderer((l) => out.push(l));
    render({ type: 'deploy.pruned', at: 1, service: 'api', object: 'ConfigMap/old' });
    render({ type: 'build.log', at: 2, service: 'api', line: 'a "quoted"\nline' });
    expect(out.every((l) => l.endsWith('\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
    expect(out.map((l) => JSON.parse(l))).toEqual([
      { v: EVENT_SCHEMA_VERSION, type: 'deploy.pruned', at: 1, service: 'api', object: 'ConfigMap/old' },
      { v: EVENT_SCHEMA_VERSION, type: 'build.log', at: 2, service: 'api', line: 'a "quoted"\nline' },
    ]);
  });

  it('is documented: docs/events.md names the schema version and describes every event type', async () => {
    const [events, docs] = await Promise.all([
      readFile(path.join(root, 'core/engine/events.ts'), 'utf8'),
      readFile(path.join(root, 'docs/events.md'), 'utf8'),
    ]);
    const types = [...events.matchAll(/type: '([a-z]+(?:\.[a-z-]+)+)'/g)].map((m) => m[1]!);
    expect(types.length).toBeGreaterThan(20);
    const missing = types.filter((t) => !docs.includes(`### \`${t}\``));
    expect(missing, `docs/events.md has no "### \`<type>\`" section for: ${missing.join(', ')}`).toEqual([]);
    expect(docs).toContain(`"v": ${EVENT_SCHEMA_VERSION}`);
  });
});
