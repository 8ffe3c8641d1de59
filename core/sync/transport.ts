import { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { pack as tarPack } from 'tar-stream';
import { ExternalError } from '../errors.js';
import type { ContainerExec, ContainerProcess } from './channel.js';
import { runToEnd } from './channel.js';
import { READY_LINE, receiverCommand } from './receiver.js';

/** One change to make under a sync root (an index into the transport's roots). */
export type SyncOp =
  | { kind: 'write'; root: number; rel: string; mode: number; data: Buffer }
  | { kind: 'link'; root: number; rel: string; target: string }
  | { kind: 'delete'; root: number; rel: string };

export interface ApplyResult {
  /** One line per file the container side refused or failed to write. */
  errors: string[];
}

/** Carries batches of changes into one container. */
export interface SyncTransport {
  /** "stream": the persistent receiver; "tar": one `tar x` exec per batch; "archive": Docker's archive API. */
  readonly mode: 'stream' | 'tar' | 'archive';
  readonly where: string;
  readonly roots: readonly string[];
  apply(ops: readonly SyncOp[]): Promise<ApplyResult>;
  /** Every file and symlink under a root (relative paths), where the transport can tell; undefined otherwise. */
  list(root: number): Promise<string[] | undefined>;
  /** Runs a command in the container (a rule's `then`). */
  run(command: string[]): Promise<{ code: number; output: string }>;
  /** Settles with a reason when the connection ends on its own (pod gone, container restarted). */
  readonly ended: Promise<string>;
  close(): Promise<void>;
}

/** A rule's `then` command, run to its end in the container; the output says why when it could not start. */
async function runCommand(execer: ContainerExec, command: string[]): Promise<{ code: number; output: string }> {
  const r = await runToEnd(execer, command);
  return { code: r.code, output: r.output || r.message };
}

/** The container cannot run the persistent receiver (no perl, or exec refused). */
export class ReceiverUnavailable extends Error {}

const READY_TIMEOUT_MS = 15_000;

/** The most one write on the sync stream carries. */
const CHUNK_BYTES = 1 << 20;

/**
 * The persistent stream: one long-lived receiver process per container, fed length-prefixed frames on stdin.
 * Batches are written one after another; each ends with a `B <id>` frame the receiver echoes once everything
 * before it is on disk, with one `E <message>` line per file it refused or could not write.
 */
export class StreamTransport implements SyncTransport {
  readonly mode = 'stream' as const;
  readonly ended: Promise<string>;
  private batchSeq = 0;
  private queue: Promise<unknown> = Promise.resolve();
  private errors: string[] = [];
  private waiting = new Map<number, (errors: string[]) => void>();
  private endedReason: string | undefined;
  private listing: { files: string[]; resolve: (files: string[]) => void } | undefined;

  private constructor(
    private readonly execer: ContainerExec,
    private readonly proc: ContainerProcess,
    readonly roots: readonly string[],
    lines: AsyncIterable<string>,
  ) {
    this.ended = (async () => {
      for await (const line of lines) this.onLine(line);
      const exit = await proc.exit;
      this.endedReason = `sync stream into ${execer.where} ended${exit.message ? `: ${exit.message}` : ` (exit ${exit.code})`}`;
      for (const resolve of this.waiting.values()) resolve([this.endedReason]);
      this.waiting.clear();
      this.listing?.resolve([]);
      this.listing = undefined;
      return this.endedReason;
    })();
  }

  get where(): string {
    return this.execer.where;
  }

  static async open(execer: ContainerExec, roots: readonly string[]): Promise<StreamTransport> {
    let proc: ContainerProcess;
    try {
      proc = await execer.start(receiverCommand(roots));
    } catch (err) {
      throw new ReceiverUnavailable(`cannot start the sync receiver in ${execer.where}: ${String((err as Error).message ?? err)}`);
    }
    const lines = splitLines(proc.stdout);
    const stderr: Buffer[] = [];
    proc.stderr.on('data', (c: Buffer) => stderr.push(c));
    const first = await Promise.race([
      lines.next().then((r) => (r.done ? undefined : r.value)),
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), READY_TIMEOUT_MS).unref()),
    ]);
    if (first !== READY_LINE) {
      proc.close();
      const exit = first === 'timeout' ? undefined : await proc.exit;
      const why = first === 'timeout' ? 'no answer' : `${exit?.message || `exit ${exit?.code}`} ${Buffer.concat(stderr).toString('utf8').trim()}`.trim();
      throw new ReceiverUnavailable(`the sync receiver did not start in ${execer.where}: ${why}`);
    }
    return new StreamTransport(execer, proc, roots, { [Symbol.asyncIterator]: () => lines });
  }

  apply(ops: readonly SyncOp[]): Promise<ApplyResult> {
    const run = this.queue.then(() => this.send(ops));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async send(ops: readonly SyncOp[]): Promise<ApplyResult> {
    if (this.endedReason) throw new ExternalError(this.endedReason);
    const id = ++this.batchSeq;
    const done = new Promise<string[]>((resolve) => this.waiting.set(id, resolve));
    // The batch goes out in chunks of at most CHUNK_BYTES, each written only when the stream took the one before
    // (backpressure): a batch of tens of megabytes never sits in memory twice or floods the connection.
    let chunk: Buffer[] = [];
    let size = 0;
    const flush = async () => {
      if (size === 0) return;
      const data = Buffer.concat(chunk, size);
      chunk = [];
      size = 0;
      await this.write(data);
    };
    const put = async (b: Buffer) => {
      for (let at = 0; at < b.length; at += CHUNK_BYTES) {
        const part = b.subarray(at, Math.min(b.length, at + CHUNK_BYTES));
        chunk.push(part);
        size += part.length;
        if (size >= CHUNK_BYTES) await flush();
      }
    };
    for (const op of ops) {
      const rel = Buffer.from(op.rel, 'utf8');
      if (op.kind === 'write') {
        await put(Buffer.from(`W ${op.root} ${(op.mode & 0o7777).toString(8)} ${op.data.length} ${rel.length}\n`));
        await put(rel);
        await put(op.data);
      } else if (op.kind === 'link') {
        const target = Buffer.from(op.target, 'utf8');
        await put(Buffer.from(`L ${op.root} ${rel.length} ${target.length}\n`));
        await put(rel);
        await put(target);
      } else {
        await put(Buffer.from(`D ${op.root} ${rel.length}\n`));
        await put(rel);
      }
    }
    await put(Buffer.from(`B ${id}\n`));
    await flush();
    const errors = await done;
    if (this.endedReason && errors.length === 1 && errors[0] === this.endedReason) throw new ExternalError(this.endedReason);
    return { errors };
  }

  list(root: number): Promise<string[] | undefined> {
    const run = this.queue.then(async () => {
      if (this.endedReason) throw new ExternalError(this.endedReason);
      const done = new Promise<string[]>((resolve) => (this.listing = { files: [], resolve }));
      await this.write(Buffer.from(`S ${root}\n`));
      return done;
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Writes to the receiver's stdin; fails when the stream ends first (a container that dies mid-write may never
   * call the write back, and a batch waiting on it would hold every later one).
   */
  private write(data: Buffer): Promise<void> {
    return Promise.race([
      write(this.proc, data),
      this.ended.then((reason) => {
        throw new ExternalError(reason);
      }),
    ]);
  }

  private onLine(line: string): void {
    if (this.listing && line.startsWith('F ')) {
      this.listing.files.push(Buffer.from(line.slice(2), 'hex').toString('utf8'));
      return;
    }
    if (this.listing && line === 'Z') {
      const { files, resolve } = this.listing;
      this.listing = undefined;
      resolve(files);
      return;
    }
    if (line.startsWith('E ')) {
      this.errors.push(line.slice(2));
    } else if (line.startsWith('B ')) {
      const id = Number(line.slice(2));
      const resolve = this.waiting.get(id);
      this.waiting.delete(id);
      const errors = this.errors;
      this.errors = [];
      resolve?.(errors);
    }
  }

  run(command: string[]): Promise<{ code: number; output: string }> {
    return runCommand(this.execer, command);
  }

  async close(): Promise<void> {
    if (!this.endedReason) {
      try {
        this.proc.stdin.write('Q\n');
        this.proc.stdin.end();
      } catch {
        // Already gone.
      }
      await Promise.race([this.ended, new Promise((r) => setTimeout(r, 2000).unref())]);
    }
    this.proc.close();
  }
}

function write(proc: ContainerProcess, data: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    proc.stdin.write(data, (err) => (err ? reject(err) : resolve()));
  });
}

/** Lines of a byte stream, as an async iterator (the receiver's replies are short ASCII lines). */
function splitLines(stream: NodeJS.ReadableStream): AsyncIterator<string> & { next(): Promise<IteratorResult<string>> } {
  const buffered: string[] = [];
  let partial = '';
  let ended = false;
  let wake: (() => void) | undefined;
  stream.on('data', (c: Buffer) => {
    partial += c.toString('utf8');
    let i: number;
    while ((i = partial.indexOf('\n')) >= 0) {
      buffered.push(partial.slice(0, i));
      partial = partial.slice(i + 1);
    }
    wake?.();
  });
  const finish = () => {
    ended = true;
    wake?.();
  };
  stream.on('end', finish);
  stream.on('close', finish);
  stream.on('error', finish);
  return {
    async next(): Promise<IteratorResult<string>> {
      for (;;) {
        if (buffered.length > 0) return { value: buffered.shift()!, done: false };
        if (ended) return { value: undefined, done: true };
        await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    },
  };
}

/** A tar archive of the writes and links (not deletions) of one batch. */
async function tarBytes(ops: readonly SyncOp[]): Promise<Buffer> {
  const pack = tarPack();
  const done = new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    pack.on('data', (c: unknown) => {
      chunks.push(c as Buffer);
    });
    pack.on('end', () => resolve(Buffer.concat(chunks)));
    pack.on('error', reject);
  });
  for (const op of ops) {
    if (op.kind === 'write') pack.entry({ name: op.rel, mode: op.mode & 0o7777, size: op.data.length }, op.data);
    else if (op.kind === 'link') pack.entry({ name: op.rel, type: 'symlink', linkname: op.target, mode: 0o777 });
  }
  pack.finalize();
  return done;
}
/** Groups ops by root, in order. */
function byRoot(ops: readonly SyncOp[]): Map<number, SyncOp[]> {
  const out = new Map<number, SyncOp[]>();
  for (const op of ops) (out.get(op.root) ?? out.set(op.root, []).get(op.root)!).push(op);
  return out;
}

const joinRoot = (root: string, rel: string) => (root === '/' ? `/${rel}` : `${root}/${rel}`);

/**
 * What the fallbacks share: each batch is its own exec or upload, so there is no connection to end or close, no
 * listing of the container's files, and `then` commands run through exec.
 */
abstract class OneShotTransport {
  readonly ended = new Promise<string>(() => {});

  /** Writes (files and links) under the root directory `dir`; a line saying why when it failed. */
  protected abstract write(dir: string, writes: SyncOp[]): Promise<string | undefined>;

  /** Per root: deletions with one `rm -rf` exec, then the writes. */
  async apply(ops: readonly SyncOp[]): Promise<ApplyResult> {
    const errors: string[] = [];
    for (const [root, group] of byRoot(ops)) {
      const dir = this.roots[root]!;
      const deletes = group.filter((o) => o.kind === 'delete').map((o) => joinRoot(dir, o.rel));
      if (deletes.length > 0) {
        const r = await runToEnd(this.execer, ['rm', '-rf', '--', ...deletes]).catch((err: unknown) => ({ code: -1, output: String(err), message: '' }));
        if (r.code !== 0) errors.push(`cannot delete ${deletes.join(', ')} in ${this.execer.where}: ${(r.output || r.message).trim()}`);
      }
      const writes = group.filter((o) => o.kind !== 'delete');
      if (writes.length === 0) continue;
      const failed = await this.write(dir, writes);
      if (failed) errors.push(failed);
    }
    return { errors };
  }

  constructor(
    protected readonly execer: ContainerExec,
    readonly roots: readonly string[],
  ) {}

  get where(): string {
    return this.execer.where;
  }

  async list(): Promise<string[] | undefined> {
    return undefined;
  }

  run(command: string[]): Promise<{ code: number; output: string }> {
    return runCommand(this.execer, command);
  }

  async close(): Promise<void> {}
}

/**
 * The fallback for containers without perl: per batch, one `tar x` exec per root for writes and links, and one
 * `rm -rf` exec for deletions. Paths were checked on devloop's side; symlinks already inside the container are
 * not re-checked here, which is why the stream is preferred.
 */
export class TarTransport extends OneShotTransport implements SyncTransport {
  readonly mode = 'tar' as const;

  static async probe(execer: ContainerExec, roots: readonly string[]): Promise<TarTransport> {
    const r = await runToEnd(execer, ['tar', '-c', '-f', '/dev/null', '-T', '/dev/null']).catch((err: unknown) => ({ code: -1, output: '', message: String(err) }));
    if (r.code !== 0) throw new ReceiverUnavailable(`tar is not usable in ${execer.where}: ${(r.message || r.output).trim() || `exit ${r.code}`}`);
    const mk = await runToEnd(execer, ['mkdir', '-p', '--', ...roots]);
    if (mk.code !== 0) throw new ReceiverUnavailable(`cannot create ${roots.join(', ')} in ${execer.where}: ${mk.output.trim()}`);
    return new TarTransport(execer, roots);
  }

  protected async write(dir: string, writes: SyncOp[]): Promise<string | undefined> {
    const r = await runToEnd(this.execer, ['tar', '-x', '-o', '-f', '-', '-C', dir], await tarBytes(writes));
    return r.code === 0 ? undefined : `tar x in ${dir} failed: ${(r.output || r.message).trim()}`;
  }
}

/**
 * Docker's archive API (PUT /containers/{id}/archive): works in containers without any shell or tar. Deletions
 * need `rm` in the container; where there is none they are reported.
 */
export class ArchiveTransport extends OneShotTransport implements SyncTransport {
  readonly mode = 'archive' as const;

  constructor(
    private readonly docker: Dockerode,
    private readonly container: string,
    execer: ContainerExec,
    roots: readonly string[],
  ) {
    super(execer, roots);
  }

  protected async write(dir: string, writes: SyncOp[]): Promise<string | undefined> {
    // The archive is extracted relative to the root, which must exist: send the root's own path components.
    const archive = await tarBytes(writes.map((o) => ({ ...o, rel: joinRoot(dir, o.rel).slice(1) })));
    try {
      await this.docker.getContainer(this.container).putArchive(Readable.from([archive]) as unknown as NodeJS.ReadableStream, { path: '/' });
      return undefined;
    } catch (err) {
      return `docker archive upload into ${this.container}:${dir} failed: ${(err as Error).message}`;
    }
  }
}
