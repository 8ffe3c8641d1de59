import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { didYouMean } from '../config/suggest.js';
import { InternalError, UserError } from '../errors.js';

/** The variables devloop can supply to a template; a template declares the ones it uses. */
export const knownVariables = ['name', 'module', 'image'] as const;
export type VariableName = (typeof knownVariables)[number];

/** A template's manifest (template.yaml) with its location. */
export interface Template {
  name: string;
  dir: string;
  description: string;
  /** The variables the template's files use, with what each means. */
  variables: Partial<Record<VariableName, string>>;
  /** Commands (argv) run in the rendered service before it is moved into place. */
  after: string[][];
  /** The devloop.yaml entry besides name and path; `manifests` relative to the service, `ports` container ports. */
  service: {
    manifests?: string;
    target?: string;
    ports: number[];
    sync: { from: string; to: string; then?: string[] }[];
  };
}

export const MANIFEST_FILE = 'template.yaml';

/** The templates shipped with devloop: `templates/` at the package root, found from this module's location. */
export function bundledTemplatesDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'templates')) && existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'templates');
    const parent = path.dirname(dir);
    if (parent === dir) throw new InternalError('the templates directory of the devloop package was not found');
    dir = parent;
  }
}

/** Every template in `dir`, sorted by name. */
export async function listTemplates(dir = bundledTemplatesDir()): Promise<Template[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const names = entries.filter((e) => e.isDirectory() && existsSync(path.join(dir, e.name, MANIFEST_FILE))).map((e) => e.name);
  return Promise.all(names.sort().map((n) => readTemplate(path.join(dir, n))));
}

/** The template called `name`; a clear error with the available names when there is none. */
export async function loadTemplate(name: string, dir = bundledTemplatesDir()): Promise<Template> {
  const all = await listTemplates(dir);
  const found = all.find((t) => t.name === name);
  if (found) return found;
  const names = all.map((t) => t.name);
  throw new UserError(`unknown template "${name}"${didYouMean(name, names)}`, {
    hint: `the templates are: ${names.join(', ')} (devloop scaffold --list describes them)`,
  });
}

/** Reads and checks a manifest; a broken manifest is a bug in the template, reported as such. */
export async function readTemplate(dir: string): Promise<Template> {
  const file = path.join(dir, MANIFEST_FILE);
  const broken = (why: string) => new InternalError(`template manifest ${file} is broken: ${why}`);
  let raw: unknown;
  try {
    raw = parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw broken((err as Error).message);
  }
  if (!isRecord(raw)) throw broken('expected a mapping');
  if (typeof raw.description !== 'string' || raw.description === '') throw broken('description: expected a one-line text');

  const variables: Template['variables'] = {};
  if (!isRecord(raw.variables)) throw broken('variables: expected a mapping of name to meaning');
  for (const [k, v] of Object.entries(raw.variables)) {
    if (!(knownVariables as readonly string[]).includes(k)) throw broken(`variables.${k}: devloop supplies only ${knownVariables.join(', ')}`);
    variables[k as VariableName] = String(v);
  }
  if (!variables.name) throw broken('variables: "name" must be declared');

  const after = raw.after ?? [];
  if (!Array.isArray(after) || !after.every((c) => Array.isArray(c) && c.length > 0 && c.every((a) => typeof a === 'string'))) {
    throw broken('after: expected a list of commands, each a list of strings');
  }

  const svc = raw.service ?? {};
  if (!isRecord(svc)) throw broken('service: expected a mapping');
  const ports = svc.ports ?? [];
  if (!Array.isArray(ports) || !ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536)) throw broken('service.ports: expected port numbers');
  const sync = svc.sync ?? [];
  if (!Array.isArray(sync) || !sync.every((r) => isRecord(r) && typeof r.from === 'string' && typeof r.to === 'string')) {
    throw broken('service.sync: expected a list of {from, to}');
  }
  const service: Template['service'] = { ports: ports as number[], sync: sync as Template['service']['sync'] };
  if (typeof svc.manifests === 'string') service.manifests = svc.manifests;
  if (typeof svc.target === 'string') service.target = svc.target;

  return { name: path.basename(dir), dir, description: raw.description.trim(), variables, after: after as string[][], service };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
