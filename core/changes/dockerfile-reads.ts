import path from 'node:path';
import { parseDockerfile, type ParsedInstruction } from '../build/dockerfile.js';

/** The Dockerfile instruction that reads a file, for people: `services/api/Dockerfile:3 COPY libs/greet libs/greet`. */
export interface ReadingInstruction {
  /** Repo-relative path of the Dockerfile. */
  dockerfile: string;
  /** 1-based line where the instruction starts. */
  line: number;
  /** The instruction on one line (here-document bodies left out). */
  text: string;
}

/** One source of one instruction: the context-relative files it can read. */
export interface ContextRead {
  /** The literal directory or file the source starts at, context-relative ('' = the whole context). */
  prefix: string;
  /** For a source with wildcards: matches the context-relative paths it reads (files below a matched directory too). */
  pattern?: RegExp;
  instruction: ReadingInstruction;
  /** The variable that could not be resolved, when this read is the whole context for that reason. */
  unresolved?: string;
}

/** What a Dockerfile can read from its build context. */
export interface DockerfileReads {
  /** In Dockerfile order; a file is read by the first one that covers it. */
  reads: ContextRead[];
  /** Sources that could not be resolved (they read the whole context), one line each naming the Dockerfile line. */
  warnings: string[];
}

/** The same reads, named after another Dockerfile path (for a service whose Dockerfile has the same text). */
export function withDockerfile(reads: DockerfileReads, dockerfile: string): DockerfileReads {
  const relabelled = reads.reads.map((r) => ({ ...r, instruction: { ...r.instruction, dockerfile } }));
  return { reads: relabelled, warnings: warningsOf(relabelled) };
}

function warningsOf(reads: readonly ContextRead[]): string[] {
  return reads
    .filter((r) => r.unresolved !== undefined)
    .map(
      ({ instruction: i, unresolved }) =>
        `${i.dockerfile}:${i.line}: ${i.text}: cannot resolve $${unresolved}; every file of the build context counts as read by this instruction`,
    );
}

/** Whether `read` covers the context-relative path `rel`. */
export function covers(read: ContextRead, rel: string): boolean {
  if (read.prefix !== '' && rel !== read.prefix && !rel.startsWith(`${read.prefix}/`)) return false;
  return read.pattern === undefined || read.pattern.test(rel);
}

/** The first read of `reads` that covers the context-relative path `rel`. */
export function readingOf(reads: DockerfileReads, rel: string): ContextRead | undefined {
  for (const r of reads.reads) if (covers(r, rel)) return r;
  return undefined;
}

/** Build arguments BuildKit fills in itself when a Dockerfile declares them: their values are not known here. */
const AUTOMATIC_ARGS = new Set([
  'TARGETPLATFORM',
  'TARGETOS',
  'TARGETARCH',
  'TARGETVARIANT',
  'BUILDPLATFORM',
  'BUILDOS',
  'BUILDARCH',
  'BUILDVARIANT',
  'TARGETSTAGE',
]);

/**
 * A variable's value: a string; `undefined` when it is declared without a value (Docker expands it to nothing);
 * `null` when devloop cannot know it (set by the base image, or by BuildKit itself).
 */
type Value = string | undefined | null;

interface Stage {
  index: number;
  /** Lower-case `AS` name. */
  name: string | undefined;
  /** Stages this one builds on or copies from. */
  uses: Set<number>;
  /** True when a `--from` could not be resolved: it may use any earlier stage. */
  usesAnyEarlier: boolean;
  /** ENV of the stage (inherited by stages built on it). */
  env: Map<string, Value>;
  args: Map<string, Value>;
  /** True when the base is an image whose own ENV devloop cannot see: unknown names may be set there. */
  open: boolean;
  reads: ContextRead[];
}

/**
 * What the Dockerfile `source` can read from its build context: the sources of COPY and ADD (`--from` copies read
 * another stage or image instead, and make the stages they name part of the build) and the sources of
 * `RUN --mount=type=bind`, in the stages the build target needs (the target, or the last stage, and the stages
 * it builds on or copies from, transitively). Variables are expanded as Docker expands them: `buildArgs`, then
 * ARG defaults, then ENV. A source whose variables cannot be resolved reads the whole context, with a warning.
 */
export function analyseDockerfile(
  source: string,
  opts: { dockerfile: string; buildArgs: Readonly<Record<string, string>>; target?: string | undefined },
): DockerfileReads {
  const { escape, instructions } = parseDockerfile(source);
  const buildArg = (name: string): Value | typeof NOT_GIVEN => (Object.hasOwn(opts.buildArgs, name) ? opts.buildArgs[name] : NOT_GIVEN);
  const globalArgs = new Map<string, Value>();
  const stages: Stage[] = [];
  const stageByName = new Map<string, number>();

  const lookupIn =
    (stage: Stage | undefined) =>
    (name: string): Value => {
      if (!stage) return globalArgs.has(name) ? globalArgs.get(name) : null;
      if (stage.env.has(name)) return stage.env.get(name);
      if (stage.args.has(name)) return stage.args.get(name);
      return stage.open ? null : undefined;
    };

  const declareArgs = (stage: Stage | undefined, ins: ParsedInstruction) => {
    for (const { name, value } of assignments(ins.args, escape, 'ARG')) {
      const given = buildArg(name);
      let v: Value;
      if (given !== NOT_GIVEN) v = given;
      else if (value !== undefined) v = expandOrNull(value, lookupIn(stage), escape);
      else if (stage && globalArgs.has(name)) v = globalArgs.get(name);
      else v = AUTOMATIC_ARGS.has(name) ? null : undefined;
      if (stage) {
        if (!stage.env.has(name)) stage.args.set(name, v);
      } else {
        globalArgs.set(name, v);
      }
    }
  };

  const stageOf = (ref: string, before: number): number | undefined => {
    const named = stageByName.get(ref.toLowerCase());
    if (named !== undefined) return named;
    return /^\d+$/.test(ref) && Number(ref) < before ? Number(ref) : undefined;
  };

  for (const ins of instructions) {
    const stage = stages.at(-1);
    const instruction = { dockerfile: opts.dockerfile, line: ins.line, text: displayText(ins) };
    switch (ins.keyword) {
      case 'ARG':
        declareArgs(stage, ins);
        break;
      case 'FROM': {
        const { words } = flagsAndWords(ins.args);
        const image = expand(words[0] ?? '', lookupIn(undefined), escape);
        const next: Stage = {
          index: stages.length,
          name: words[1]?.toLowerCase() === 'as' ? words[2]?.toLowerCase() : undefined,
          uses: new Set(),
          usesAnyEarlier: false,
          env: new Map(),
          args: new Map(),
          open: true,
          reads: [],
        };
        if ('unknown' in image) {
          next.usesAnyEarlier = true;
        } else {
          const parent = stageOf(image.value, next.index);
          if (parent !== undefined) {
            next.uses.add(parent);
            next.env = new Map(stages[parent]!.env);
            next.open = stages[parent]!.open;
          } else if (image.value === 'scratch') {
            next.open = false;
          }
        }
        stages.push(next);
        if (next.name !== undefined) stageByName.set(next.name, next.index);
        break;
      }
      case 'ENV':
        if (stage) for (const { name, value } of assignments(ins.args, escape, 'ENV')) stage.env.set(name, value === undefined ? '' : expandOrNull(value, lookupIn(stage), escape));
        break;
      case 'COPY':
      case 'ADD': {
        if (!stage) break;
        const { flags, words, json } = flagsAndWords(ins.args);
        const from = flags.get('from');
        if (from !== undefined) {
          const ref = expand(from, lookupIn(stage), escape);
          if ('unknown' in ref) stage.usesAnyEarlier = true;
          else {
            const used = stageOf(ref.value, stage.index);
            if (used !== undefined) stage.uses.add(used);
          }
          break; // another stage's or image's files, not the context's
        }
        for (const src of words.slice(0, -1)) {
          if (!json && src.startsWith('<<')) continue; // a here-document: part of the Dockerfile
          if (ins.keyword === 'ADD' && /^([a-z][a-z0-9+.-]*:\/\/|git@)/i.test(src)) continue; // fetched, not read from the context
          addRead(stage, src, instruction);
        }
        break;
      }
      case 'RUN': {
        if (!stage) break;
        for (const mount of flagsAndWords(ins.args).mounts) {
          const options = new Map(
            mount.split(',').map((kv) => {
              const eq = kv.indexOf('=');
              return eq < 0 ? [kv.trim().toLowerCase(), 'true'] : [kv.slice(0, eq).trim().toLowerCase(), kv.slice(eq + 1).trim()];
            }),
          );
          const from = options.get('from');
          if (from !== undefined) {
            const ref = expand(from, lookupIn(stage), escape);
            if ('unknown' in ref) stage.usesAnyEarlier = true;
            else {
              const used = stageOf(ref.value, stage.index);
              if (used !== undefined) stage.uses.add(used);
            }
            continue;
          }
          if ((options.get('type') ?? 'bind') !== 'bind') continue;
          addRead(stage, options.get('source') ?? options.get('src') ?? '.', instruction);
        }
        break;
      }
      default:
        break;
    }
  }

  function addRead(stage: Stage, src: string, instruction: ReadingInstruction): void {
    const expanded = expand(src, lookupIn(stage), escape);
    if ('unknown' in expanded) {
      stage.reads.push({ prefix: '', instruction, unresolved: expanded.unknown });
      return;
    }
    stage.reads.push({ ...sourceMatcher(expanded.value), instruction });
  }

  // The stages the target needs, in Dockerfile order.
  const wanted = opts.target === undefined ? undefined : stageByName.get(opts.target.toLowerCase());
  const needed = new Set<number>();
  const visit = (i: number) => {
    if (needed.has(i)) return;
    needed.add(i);
    const s = stages[i]!;
    for (const u of s.uses) visit(u);
    if (s.usesAnyEarlier) for (let j = 0; j < i; j++) visit(j);
  };
  if (stages.length > 0) visit(wanted ?? stages.length - 1);
  const reads = stages.filter((s) => needed.has(s.index)).flatMap((s) => s.reads);
  return { reads, warnings: warningsOf(reads) };
}

const NOT_GIVEN = Symbol('not given');

/** The instruction on one line for people, without its here-document bodies. */
function displayText(ins: ParsedInstruction): string {
  return ins.text.replace(/\s+/g, ' ');
}

/** Leading `--name=value` flags, then the words (a JSON array form gives its strings). */
function flagsAndWords(args: string): { flags: Map<string, string>; mounts: string[]; words: string[]; json: boolean } {
  const flags = new Map<string, string>();
  const mounts: string[] = [];
  let rest = args.trim();
  for (;;) {
    const m = /^--([A-Za-z][A-Za-z0-9-]*)(?:=(\S*))?(?:\s+|$)/.exec(rest);
    if (!m) break;
    const name = m[1]!.toLowerCase();
    if (name === 'mount') mounts.push(m[2] ?? '');
    else flags.set(name, m[2] ?? 'true');
    rest = rest.slice(m[0].length);
  }
  if (rest.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(rest);
      if (Array.isArray(parsed) && parsed.every((w) => typeof w === 'string')) return { flags, mounts, words: parsed, json: true };
    } catch {
      // Not valid JSON: Docker reads the text as plain words, and so does this.
    }
  }
  return { flags, mounts, words: rest === '' ? [] : rest.split(/\s+/), json: false };
}

/**
 * The assignments of an ARG or ENV: `NAME`, `NAME=value`, `NAME="quoted value"`, several per line; and ENV's
 * old form `NAME value with spaces`. Values are returned unexpanded (quotes kept for expansion to remove).
 */
function assignments(args: string, escape: string, keyword: 'ARG' | 'ENV'): { name: string; value: string | undefined }[] {
  const words = splitWords(args, escape);
  if (keyword === 'ENV' && words.length >= 2 && !words[0]!.includes('=')) {
    // `ENV NAME value…` (for ARG, `ARG A B` declares both)
    return [{ name: words[0]!, value: args.trim().slice(words[0]!.length).trim() }];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    return eq < 0 ? { name: w, value: undefined } : { name: w.slice(0, eq), value: w.slice(eq + 1) };
  });
}

/** Whitespace-separated words, where quotes and the escape character keep whitespace inside a word. */
function splitWords(text: string, escape: string): string[] {
  const out: string[] = [];
  let word = '';
  let quote: string | undefined;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === escape && i + 1 < text.length && quote !== "'") {
      word += c + text[++i]!;
      inWord = true;
    } else if (quote) {
      if (c === quote) quote = undefined;
      word += c;
    } else if (c === '"' || c === "'") {
      quote = c;
      word += c;
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) out.push(word);
  return out;
}

type Expanded = { value: string } | { unknown: string };

function expandOrNull(word: string, lookup: (name: string) => Value, escape: string): string | null {
  const e = expand(word, lookup, escape);
  return 'unknown' in e ? null : e.value;
}

/**
 * Docker's word expansion: `$NAME`, `${NAME}`, `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`, `${NAME+word}`,
 * quotes removed (single quotes keep `$` literal), the escape character taking the next character literally.
 * A variable devloop cannot know, or a form it does not handle, makes the whole word unknown.
 */
export function expand(word: string, lookup: (name: string) => Value, escape = '\\'): Expanded {
  let out = '';
  let inDouble = false;
  let i = 0;
  while (i < word.length) {
    const c = word[i]!;
    if (c === escape && i + 1 < word.length) {
      out += word[i + 1];
      i += 2;
    } else if (c === "'" && !inDouble) {
      const end = word.indexOf("'", i + 1);
      if (end < 0) {
        out += word.slice(i + 1);
        break;
      }
      out += word.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      inDouble = !inDouble;
      i++;
    } else if (c === '$') {
      const v = variable(word, i, lookup, escape);
      if ('unknown' in v) return v;
      out += v.value;
      i = v.end;
    } else {
      out += c;
      i++;
    }
  }
  return { value: out };
}

function variable(word: string, at: number, lookup: (name: string) => Value, escape: string): { value: string; end: number } | { unknown: string } {
  const simple = /^\$([A-Za-z_][A-Za-z0-9_]*)/.exec(word.slice(at));
  if (simple) {
    const v = lookup(simple[1]!);
    if (v === null) return { unknown: simple[1]! };
    return { value: v ?? '', end: at + simple[0].length };
  }
  const braced = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(\}|:?[-+?])/.exec(word.slice(at));
  if (!braced) return { value: '$', end: at + 1 };
  const name = braced[1]!;
  const v = lookup(name);
  if (braced[2] === '}') return v === null ? { unknown: name } : { value: v ?? '', end: at + braced[0].length };
  // `${NAME<op>word}`: the word runs to the matching brace.
  let depth = 1;
  let j = at + braced[0].length;
  const start = j;
  for (; j < word.length; j++) {
    if (word[j] === escape) j++;
    else if (word[j] === '{') depth++;
    else if (word[j] === '}' && --depth === 0) break;
  }
  if (v === null) return { unknown: name };
  const op = braced[2]!;
  const isSet = v !== undefined;
  const hasValue = isSet && v !== '';
  const useWord = op === ':-' || op === ':?' ? !hasValue : op === '-' || op === '?' ? !isSet : op === ':+' ? hasValue : isSet;
  const end = j + 1;
  if (op.endsWith('?')) return { value: v ?? '', end }; // unset: the build itself fails with the message
  if (op.endsWith('-') && !useWord) return { value: v ?? '', end };
  if (op.endsWith('+') && !useWord) return { value: '', end };
  const inner = expand(word.slice(start, j), lookup, escape);
  return 'unknown' in inner ? inner : { value: inner.value, end };
}

/**
 * What an expanded source reads, context-relative: Docker cleans it (a leading `/` or `..` stays inside the
 * context) and matches wildcards (`*`, `?`, `[…]`) per path segment, a match that is a directory bringing
 * everything below it. `**` is taken to cross segments.
 */
export function sourceMatcher(src: string): { prefix: string; pattern?: RegExp } {
  const cleaned = path.posix.join('/', src).replace(/\/+$/, '').slice(1);
  const segments = cleaned === '' ? [] : cleaned.split('/');
  const firstWild = segments.findIndex((s) => /[*?[]/.test(s));
  if (firstWild < 0) return { prefix: cleaned };
  const prefix = segments.slice(0, firstWild).join('/');
  return { prefix, pattern: new RegExp(`^${globToRegExp(cleaned)}(?:/.*)?$`, 's') };
}

function globToRegExp(glob: string): string {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else {
        re += '[^/]*';
      }
    } else if (c === '?') {
      re += '[^/]';
    } else if (c === '[') {
      const close = glob.indexOf(']', i + 2);
      if (close < 0) {
        re += '\\[';
        continue;
      }
      // `^` negates in Go's filepath.Match as in JavaScript (and `!` is a plain character in both).
      re += `[${glob.slice(i + 1, close).replace(/\\/g, '\\\\')}]`;
      i = close;
    } else if (c === '\\' && i + 1 < glob.length) {
      re += escapeRegExp(glob[++i]!);
    } else {
      re += escapeRegExp(c);
    }
  }
  return re;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
