import path from 'node:path';
import { exists } from '../fs.js';

export const CONFIG_FILE = 'devloop.yaml';

/**
 * Where the project containing `start` is: the nearest devloop.yaml in `start` or a parent (not above the git top
 * level), else that top level. Light on purpose (no YAML parser): commands call it first, to start git early.
 */
export async function findProjectRoot(
  start: string,
): Promise<{ kind: 'file'; file: string } | { kind: 'git'; dir: string } | { kind: 'none' }> {
  for (let d = start; ; ) {
    const file = path.join(d, CONFIG_FILE);
    if (await exists(file)) return { kind: 'file', file };
    // The repository's top level bounds the search: a devloop.yaml above it belongs to something else.
    if (await exists(path.join(d, '.git'))) return { kind: 'git', dir: d };
    const parent = path.dirname(d);
    if (parent === d) return { kind: 'none' };
    d = parent;
  }
}
