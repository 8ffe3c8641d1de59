import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node as YamlNode } from 'yaml';
import { UserError, UserErrors } from '../errors.js';
import type { ProjectConfig } from './types.js';
import { discoverProject } from './discover.js';
import { displayPath } from './paths.js';
import { schemaProblems } from './validate-schema.js';
import { semanticProblems } from './validate-semantic.js';
import { exists } from '../fs.js';
import { CONFIG_FILE, findProjectRoot } from './root.js';

export { CONFIG_FILE, findProjectRoot } from './root.js';

/** A key path into the config document, e.g. ['services', 1, 'path']. */
export type KeyPath = (string | number)[];

/** One problem found in devloop.yaml; `at` says whether the key or its value is to blame. */
export interface ConfigProblem {
  keyPath: KeyPath;
  at: 'key' | 'value';
  message: string;
}

const CONFIG_HINT = `fix ${CONFIG_FILE} (schema/devloop.schema.json in the devloop package gives editors completion and checks)`;

/**
 * Loads the project that contains `dir`: the nearest devloop.yaml in `dir` or a parent (not above the git top
 * level), validated and with defaults resolved; without one, the services are discovered from Dockerfiles
 * under the git top level. Every problem in the file is reported at once as a UserErrors, one line each.
 */
export async function loadProject(dir: string): Promise<ProjectConfig> {
  const start = path.resolve(dir);
  if (!(await exists(start))) throw new UserError(`directory ${start} does not exist`);
  const found = await findProjectRoot(start);
  if (found.kind === 'file') return loadProjectFile(found.file);
  if (found.kind === 'git') return discoverProject(found.dir);
  throw new UserError(`no ${CONFIG_FILE} in ${start} or any parent directory, and it is not inside a git repository`, {
    hint: 'run devloop inside your repository (or pass -C <dir>); `devloop init` writes a devloop.yaml',
  });
}

export async function loadProjectFile(file: string): Promise<ProjectConfig> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new UserError(`cannot read ${displayPath(file)}: ${(err as Error).message}`, { cause: err });
  }
  return parseProjectConfig(text, file);
}

/** Parses and validates the text of a devloop.yaml located at `file` (its directory is the project root). */
export async function parseProjectConfig(text: string, file: string): Promise<ProjectConfig> {
  const label = displayPath(file);
  const root = path.dirname(file);
  if (text.includes('\u0000')) {
    throw new UserError(`${label} is not a text file (it holds NUL bytes)`, { hint: CONFIG_HINT });
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true, merge: true });
  if (doc.errors.length > 0) {
    throw new UserErrors(
      capProblems(doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
        const first = e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
        return `${label}:${pos.line}:${pos.col} ${first}`;
      })),
      { hint: CONFIG_HINT },
    );
  }

  const data: unknown = doc.toJS({ maxAliasCount: 1000 });
  const problems = schemaProblems(data);
  const semantic = await semanticProblems(data, root);
  problems.push(...semantic.problems);

  if (problems.length > 0) {
    const lines = problems
      .map((p) => ({ p, pos: locate(doc, lineCounter, p.keyPath, p.at) }))
      .sort((a, b) => a.pos.line - b.pos.line || a.pos.col - b.pos.col)
      .map(({ p, pos }) => {
        // An unknown key is named in the message; the location prefix is the mapping that holds it.
        const where = formatKeyPath(p.at === 'key' ? p.keyPath.slice(0, -1) : p.keyPath);
        return `${label}:${pos.line}:${pos.col} ${where ? `${where}: ` : ''}${p.message}`;
      });
    throw new UserErrors(capProblems([...new Set(lines)]), { hint: CONFIG_HINT });
  }

  const project = semantic.project!;
  return { ...project, root, file };
}

const MAX_PROBLEMS = 20;
const MAX_PROBLEM_CHARS = 300;

/** A file that is not a devloop.yaml at all must not print megabytes: the first problems, each one line, bounded. */
function capProblems(lines: string[]): string[] {
  const shown = lines.slice(0, MAX_PROBLEMS).map((l) => (l.length > MAX_PROBLEM_CHARS ? `${l.slice(0, MAX_PROBLEM_CHARS - 1)}…` : l));
  if (lines.length > MAX_PROBLEMS) shown.push(`… and ${lines.length - MAX_PROBLEMS} more problems`);
  return shown;
}

/** ['services', 1, 'path'] → "services[1].path". */
export function formatKeyPath(keyPath: KeyPath): string {
  let out = '';
  for (const seg of keyPath) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? seg : `.${seg}`;
  }
  return out;
}

/** Line and column (1-based) of the key or value at `keyPath`, or of the closest enclosing node that exists. */
function locate(doc: Document, lineCounter: LineCounter, keyPath: KeyPath, at: 'key' | 'value'): { line: number; col: number } {
  let node: unknown = doc.contents;
  let keyNode: YamlNode | null = null;
  let deepest: YamlNode | null = withRange(node);
  for (const seg of keyPath) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      if (!pair) break;
      keyNode = isScalar(pair.key) ? pair.key : null;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number' && seg < node.items.length) {
      keyNode = null;
      node = node.items[seg];
    } else {
      break;
    }
    deepest = withRange(node) ?? keyNode ?? deepest;
  }
  // A key without a value ("path:") has a zero-width null value: point at the key then.
  const value = withRange(node);
  const target = at === 'key' && keyNode ? keyNode : value && value.range![1] > value.range![0] ? value : (keyNode ?? deepest);
  return lineCounter.linePos(target?.range?.[0] ?? 0);
}

function withRange(n: unknown): YamlNode | null {
  return (isScalar(n) || isMap(n) || isSeq(n) || isAlias(n)) && n.range ? n : null;
}

