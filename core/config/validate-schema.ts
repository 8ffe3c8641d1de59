import type { ErrorObject } from 'ajv';
import type { ConfigProblem, KeyPath } from './load.js';
import { didYouMean } from './suggest.js';
import { validate as generatedValidate } from './validator.generated.js';

/** The schema in core/config/schema.ts, compiled ahead of time by `npm run schema` (ajv standalone). */
const validate = generatedValidate as ((data: unknown) => boolean) & { errors?: ErrorObject[] | null };

/** Schema problems in the parsed document, each pointing at the key or value to blame. */
export function schemaProblems(data: unknown): ConfigProblem[] {
  if (data === null || data === undefined) {
    return [{ keyPath: [], at: 'value', message: 'the file is empty; expected a mapping with "version: 1" and "services"' }];
  }
  if (validate(data)) return [];
  const out: ConfigProblem[] = [];
  const errors = validate.errors ?? [];
  for (const e of errors) {
    const p = toProblem(e, data, errors);
    if (p) out.push(p);
  }
  return out;
}

function toProblem(e: ErrorObject, root: unknown, all: ErrorObject[]): ConfigProblem | null {
  const keyPath = decodePointer(e.instancePath, root);
  const parent = e.parentSchema as Record<string, unknown> | undefined;
  const expected = typeof parent?.['x-expected'] === 'string' ? (parent['x-expected'] as string) : undefined;
  switch (e.keyword) {
    case 'additionalProperties': {
      const key = (e.params as { additionalProperty: string }).additionalProperty;
      const allowed = Object.keys((parent?.properties as object | undefined) ?? {});
      const extensions = parent?.patternProperties ? ' (extension keys start with "x-")' : '';
      const suggestion = didYouMean(key, allowed);
      return { keyPath: [...keyPath, key], at: 'key', message: `unknown key "${key}"${suggestion || extensions}` };
    }
    case 'required': {
      const key = (e.params as { missingProperty: string }).missingProperty;
      return { keyPath, at: 'value', message: `missing required key "${key}"` };
    }
    case 'propertyNames':
      return null; // reported by the nested check on the name itself
    case 'type': {
      // A union type ("string or integer") fails once per branch keyword; report only the type mismatch.
      const want = ([] as string[]).concat((e.params as { type: string | string[] }).type);
      return { keyPath: withPropertyName(keyPath, e), at: e.propertyName ? 'key' : 'value', message: `expected ${want.map(typeWord).join(' or ')}, got ${describe(e.data)}` };
    }
    case 'uniqueItems': {
      const { i, j } = e.params as { i: number; j: number };
      return { keyPath: [...keyPath, i], at: 'value', message: `duplicate entry ${JSON.stringify((e.data as unknown[])[i])} (same as item ${j})` };
    }
    case 'minLength':
      return { keyPath, at: 'value', message: 'must not be empty' };
    case 'minItems':
      return { keyPath, at: 'value', message: 'must not be empty' };
    case 'const':
    case 'enum':
    case 'pattern':
    case 'minimum':
    case 'maximum':
    case 'maxLength': {
      if (e.propertyName !== undefined) {
        return { keyPath: [...keyPath, e.propertyName], at: 'key', message: `invalid name "${e.propertyName}": expected ${expected ?? 'a valid name'}` };
      }
      // ports accept a number or a string: a pattern error on a number, or minimum on a string, cannot happen,
      // but a type error can come along with them; keep one line per value.
      if (all.some((o) => o !== e && o.instancePath === e.instancePath && o.keyword === 'type')) return null;
      const want = expected ?? schemaWord(e);
      return { keyPath, at: 'value', message: `expected ${want}, got ${describe(e.data)}` };
    }
    default:
      return { keyPath, at: 'value', message: e.message ?? `invalid (${e.keyword})` };
  }
}

function withPropertyName(keyPath: KeyPath, e: ErrorObject): KeyPath {
  return e.propertyName !== undefined ? [...keyPath, e.propertyName] : keyPath;
}

/** JSON pointer → key path; array indexes become numbers so positions and messages read `services[1]`. */
function decodePointer(pointer: string, root: unknown): KeyPath {
  if (pointer === '') return [];
  const out: KeyPath = [];
  let node: unknown = root;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) {
      const i = Number(seg);
      out.push(i);
      node = node[i];
    } else {
      out.push(seg);
      node = node !== null && typeof node === 'object' ? (node as Record<string, unknown>)[seg] : undefined;
    }
  }
  return out;
}

function typeWord(t: string): string {
  switch (t) {
    case 'object':
      return 'a mapping';
    case 'array':
      return 'a list';
    case 'integer':
      return 'an integer';
    default:
      return `a ${t}`;
  }
}

function describe(v: unknown): string {
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return JSON.stringify(v);
  return `${typeof v} ${String(v)}`;
}

function schemaWord(e: ErrorObject): string {
  switch (e.keyword) {
    case 'const':
      return JSON.stringify((e.params as { allowedValue: unknown }).allowedValue);
    case 'enum':
      return `one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'maxLength':
      return `at most ${(e.params as { limit: number }).limit} characters`;
    default:
      return e.message ?? e.keyword;
  }
}
