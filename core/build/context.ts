import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import ignoreModule from '@balena/dockerignore';
import { pack as tarPack } from 'tar-stream';
import { ContextChanged } from './failures.js';

export { ContextChanged } from './failures.js';

// The package is CommonJS with a default export function.
const createIgnore = ignoreModule as unknown as (opts?: { ignorecase?: boolean }) => {
  add(patterns: string | string[]): unknown;
  ignores(p: string): boolean;
};


export interface ContextFile {
  /** POSIX path relative to the context root. */
  name: string;
  abs: string;
  kind: 'file' | 'dir' | 'symlink';
}

/**
 * The ignore file Docker applies: `<Dockerfile>.dockerignore` next to the Dockerfile wins over `.dockerignore` at the
 * context root (BuildKit's rule, which the change planner uses too, so content versions and contexts agree).
 */
export async function readDockerignore(contextDir: string, dockerfile = 'Dockerfile'): Promise<string[]> {
  for (const candidate of [`${path.resolve(contextDir, dockerfile)}.dockerignore`, path.join(contextDir, '.dockerignore')]) {
    let text: string;
    try {
      text = await readFile(candidate, 'utf8');
    } catch {
      // No such .dockerignore: try the next candidate, as Docker does.
      continue;
    }
    return text
      .split(/\r?\n/)
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
  }
  return [];
}

/** Where the Dockerfile is inside the tar: its own path, or (outside the context) an added `.dockerfile.<hash>`. */
export function dockerfileInContext(contextDir: string, dockerfile: string): { name: string; abs: string; outside: boolean } {
  const abs = path.resolve(contextDir, dockerfile);
  const rel = path.relative(contextDir, abs);
  if (rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel)) return { name: rel.split(path.sep).join('/'), abs, outside: false };
  return { name: `.dockerfile.${createHash('sha256').update(abs).digest('hex').slice(0, 16)}`, abs, outside: true };
}

/**
 * Lists what goes into the build context: every path not excluded by .dockerignore. The Dockerfile and
 * .dockerignore are always sent, as the Docker CLI does. A directory matched by a pattern is only descended into
 * when an exception pattern (`!…`) could re-include something inside it.
 */
export async function listContext(contextDir: string, dockerfile = 'Dockerfile'): Promise<ContextFile[]> {
  const patterns = await readDockerignore(contextDir, dockerfile);
  const ig = createIgnore({ ignorecase: false });
  ig.add(patterns);
  const hasExceptions = patterns.some((p) => p.startsWith('!'));
  const df = dockerfileInContext(contextDir, dockerfile);
  const always = new Set([df.name, '.dockerignore']);
  const out: ContextFile[] = [];

  async function walk(relDir: string): Promise<void> {
    const absDir = path.join(contextDir, relDir);
    const entries = await readdir(absDir, { withFileTypes: true });
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const entry of entries) {
      const rel = relDir === '' ? entry.name : `${relDir}/${entry.name}`;
      const abs = path.join(absDir, entry.name);
      const ignored = !always.has(rel) && ig.ignores(rel);
      if (entry.isDirectory()) {
        if (ignored && !hasExceptions) continue;
        if (!ignored) out.push({ name: rel, abs, kind: 'dir' });
        await walk(rel);
      } else if (!ignored) {
        out.push({ name: rel, abs, kind: entry.isSymbolicLink() ? 'symlink' : 'file' });
      }
    }
  }
  await walk('');
  if (df.outside) out.push({ name: df.name, abs: df.abs, kind: 'file' });
  return out;
}

const VANISHED = new Set(['ENOENT', 'ENOTDIR', 'ELOOP']);

/** A build context on its way to the daemon: the tar, and the task that produces it. */
export interface ContextTar {
  /** The tar. A failure while producing it (a vanished file: ContextChanged) destroys it with that error. */
  readonly stream: Readable;
  /**
   * Stops the producer, if it is still running (the reader gave up: the build failed or was refused), and resolves
   * once it has stopped. Whoever reads the stream calls it when done with it, whatever the outcome.
   */
  close(): Promise<void>;
}

/**
 * A tar stream of the build context, produced lazily (files are read as the daemon consumes the stream). Entries
 * carry the files' own modification times, as the docker CLI sends them: the builders' cache keys ignore them, but
 * tools inside the build do not (Go's build cache indexes a package's files by name, size and mtime, so a fixed
 * mtime would let a cache mount serve a stale parse of a changed file of the same size).
 * `dockerfileText`, when given, is sent in place of the Dockerfile's content.
 */
export function contextTarStream(contextDir: string, dockerfile = 'Dockerfile', dockerfileText?: string): ContextTar {
  const pack = tarPack();
  // Its failures end the stream with the error; it settles once the stream is finalized or destroyed.
  const produced = produceContext(pack, contextDir, dockerfile, dockerfileText);
  const stream = pack as unknown as Readable;
  return {
    stream,
    async close() {
      // Without an error, so the reader sees none. Before the end of the tar the open entry fails and the producer
      // stops; after it, this changes nothing.
      stream.destroy();
      await produced;
    },
  };
}

async function produceContext(pack: ReturnType<typeof tarPack>, contextDir: string, dockerfile: string, dockerfileText: string | undefined): Promise<void> {
  let current = '.';
  try {
    const files = await listContext(contextDir, dockerfile);
    const dockerfileName = dockerfileInContext(contextDir, dockerfile).name;
    for (const f of files) {
      current = f.name;
      const st = await lstat(f.abs);
      if (dockerfileText !== undefined && f.name === dockerfileName) {
        pack.entry({ name: f.name, mode: st.mode & 0o7777, mtime: st.mtime }, dockerfileText);
      } else if (f.kind === 'dir') {
        pack.entry({ name: f.name, type: 'directory', mode: st.mode & 0o7777, mtime: st.mtime });
      } else if (f.kind === 'symlink') {
        pack.entry({ name: f.name, type: 'symlink', linkname: await readlink(f.abs), mode: st.mode & 0o7777, mtime: st.mtime });
      } else {
        await new Promise<void>((resolve, reject) => {
          const src = createReadStream(f.abs);
          const fail = (err: Error) => {
            src.destroy();
            reject(err);
          };
          const entry = pack.entry({ name: f.name, size: st.size, mode: st.mode & 0o7777, mtime: st.mtime }, (err) =>
            err ? fail(err) : resolve(),
          );
          // Destroying the pack (below, or by its reader) ends the open entry with an error: the producer stops.
          entry.on('error', fail);
          src.on('error', fail);
          src.pipe(entry);
        });
      }
    }
    pack.finalize();
  } catch (err) {
    // A pack its reader destroyed already carries its reader's outcome: destroying it again changes nothing.
    pack.destroy(VANISHED.has((err as NodeJS.ErrnoException).code ?? '') ? new ContextChanged(current, err) : (err as Error));
  }
}
