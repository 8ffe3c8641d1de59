import path from 'node:path';
import type { EngineEventInput } from '../engine/events.js';
import { filesCoveredByRules, prepareOps, syncRoots } from './local.js';
import { GitIgnore, NEVER_WATCHED } from '../watch/ignore.js';
import { destinationFor, type CompiledRule } from './rules.js';
import type { SyncTransport } from './transport.js';
import { existsNoFollow } from '../fs.js';

/** A container to keep in sync: its key, and how the target opens a sync channel into it. */
export interface SyncTarget {
  /** Stable while the container lives, e.g. "<pod>/<container>#<restarts>". */
  key: string;
  /** For messages: "pod web-7d9f/web". */
  where: string;
  connect(roots: string[]): Promise<SyncTransport>;
}

export interface ServiceSyncOptions {
  service: string;
  /** Absolute project root. */
  root: string;
  rules: readonly CompiledRule[];
  /** Whether a repo path is in the service's image (its own input): the initial sync sends only those. */
  isOwnInput: (repoPath: string) => boolean;
  emit: (e: EngineEventInput) => void;
  /** The connection broke and could not be had again: what it did not carry must reach the container another way. */
  onLost?: () => void;
}

const RECONNECT_ATTEMPTS = 3;
const RECONNECT_DELAY_MS = 300;

/**
 * Keeps every running container of one service in line with the local tree: connects a transport when a
 * container appears (persistent stream; tar over exec, or Docker's archive API, as the fallback), runs the
 * initial sync, then carries each batch. Batches and initial syncs of a service run one at a time, in order.
 */
export class ServiceSync {
  private readonly transports = new Map<string, SyncTransport>();
  /** Containers attached and still followed, connected or not (a broken stream is connected again). */
  private readonly known = new Map<string, SyncTarget>();
  /** Per connection, the watch for its end (see watchEnd) and how to stop it. */
  private readonly watches = new Map<SyncTransport, { drop: () => void; done: Promise<void> }>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  private unsyncable: string | undefined;

  constructor(private readonly opts: ServiceSyncOptions) {}

  get service(): string {
    return this.opts.service;
  }

  /**
   * Why files cannot reach this service's containers (the last one could not be connected, and none is), or
   * undefined. Changes that would be synced rebuild instead.
   */
  cannotSync(): string | undefined {
    return this.transports.size === 0 ? this.unsyncable : undefined;
  }

  /** Connected containers' keys. */
  connected(): string[] {
    return [...this.transports.keys()];
  }

  /** A new container (or a restarted one): connect, then bring its files in line with the local tree. */
  attach(target: SyncTarget): Promise<void> {
    return this.enqueue(async () => {
      if (this.closed || this.transports.has(target.key)) return;
      this.known.set(target.key, target);
      try {
        await this.connect(target);
      } catch (err) {
        this.unsyncable = (err as Error).message;
        this.opts.emit({ type: 'sync.failed', service: this.service, where: target.where, message: this.unsyncable });
      }
    });
  }

  /** Connects, listens for the connection's end, and runs the initial sync (which also resends what was lost). */
  private async connect(target: SyncTarget): Promise<void> {
    const roots = syncRoots(this.opts.rules);
    const transport = await target.connect(roots);
    this.unsyncable = undefined;
    this.transports.set(target.key, transport);
    this.opts.emit({ type: 'sync.connected', service: this.service, where: transport.where, mode: transport.mode });
    this.watchEnd(target, transport);
    const files = await filesCoveredByRules(this.opts.root, this.opts.rules, this.opts.isOwnInput);
    // Listing what the container holds only finds stale files; without it the sync still carries every file.
    const stale = await this.staleInContainer(transport, roots).catch(() => []);
    await this.push([...files, ...stale], [transport], true);
  }

  /**
   * Waits, until the connection is dropped (detach, close), for it to end on its own, and then connects again.
   * close() awaits the watch; a failure in it is reported as `sync.failed`.
   */
  private watchEnd(target: SyncTarget, transport: SyncTransport): void {
    let drop!: () => void;
    // Fallback transports have no connection to end: their `ended` never settles, so dropping is what ends the watch.
    const dropped = new Promise<undefined>((resolve) => (drop = () => resolve(undefined)));
    const done = Promise.race([transport.ended, dropped])
      .then(async (reason) => {
        if (reason !== undefined) await this.onEnded(target, transport, reason);
      })
      .catch((err: unknown) => {
        this.opts.emit({ type: 'sync.failed', service: this.service, where: transport.where, message: `following the sync connection failed: ${(err as Error).message}` });
      })
      .finally(() => this.watches.delete(transport));
    this.watches.set(transport, { drop, done });
  }

  /** The connection ended on its own: forget it and, while the container is still followed, connect again. */
  private async onEnded(target: SyncTarget, transport: SyncTransport, reason: string): Promise<void> {
    if (this.transports.get(target.key) !== transport) return;
    this.transports.delete(target.key);
    if (this.closed) return;
    this.opts.emit({ type: 'sync.disconnected', service: this.service, where: transport.where, reason });
    // The container may still run (only the stream broke): connect again, and resend everything. reconnect() reports
    // its own failure to connect as an event.
    if (this.known.get(target.key) === target) await this.enqueue(() => this.reconnect(target));
  }

  /**
   * The stream into a container that devloop still follows broke: try again a few times. What changed meanwhile is
   * in the initial sync of the new connection. When it cannot be had, the service's changes rebuild instead.
   */
  private async reconnect(target: SyncTarget): Promise<void> {
    let last = '';
    for (let attempt = 1; attempt <= RECONNECT_ATTEMPTS; attempt++) {
      await new Promise((r) => setTimeout(r, RECONNECT_DELAY_MS * attempt));
      if (this.closed || this.known.get(target.key) !== target || this.transports.has(target.key)) return;
      try {
        await this.connect(target);
        return;
      } catch (err) {
        last = (err as Error).message;
      }
    }
    this.unsyncable = `the sync connection to ${target.where} broke and could not be opened again: ${last}`;
    this.opts.emit({ type: 'sync.failed', service: this.service, where: target.where, message: `${this.unsyncable}; changes rebuild instead` });
    this.opts.onLost?.();
  }

  /**
   * Files in the container that a rule covers but that were deleted locally (since the image was built, or
   * while no container ran): the initial sync deletes them. Conservative on purpose, so nothing the image made
   * itself goes: files no rule covers, files under node_modules, files whose directory does not exist locally
   * (dependencies installed in the image), and files git ignores (build output) are left alone.
   */
  private async staleInContainer(transport: SyncTransport, roots: string[]): Promise<string[]> {
    const candidates: string[] = [];
    for (let i = 0; i < roots.length; i++) {
      const listed = await transport.list(i);
      if (!listed) continue;
      for (const rule of this.opts.rules.filter((r) => r.to === roots[i])) {
        for (const rel of listed) {
          const repoPath = rule.base === '' ? rel : `${rule.base}/${rel}`;
          if (repoPath.split('/').some((seg) => NEVER_WATCHED.has(seg))) continue;
          if (destinationFor(this.opts.rules, repoPath)?.rule !== rule || !this.opts.isOwnInput(repoPath)) continue;
          const abs = path.join(this.opts.root, repoPath);
          if (!(await existsNoFollow(abs)) && (await existsNoFollow(path.dirname(abs)))) candidates.push(repoPath);
        }
      }
    }
    const ignored = await new GitIgnore(this.opts.root).ignored(candidates);
    return candidates.filter((p) => !ignored.has(p));
  }

  /** The container is gone: drop its transport (closed after the batch in flight, if any). */
  detach(key: string): Promise<void> {
    this.known.delete(key);
    const t = this.transports.get(key);
    if (!t) return Promise.resolve();
    this.transports.delete(key);
    this.watches.get(t)?.drop();
    return this.enqueue(() => t.close());
  }

  /** Carries changed repo paths (written or deleted) into every connected container. */
  sync(paths: readonly string[]): Promise<void> {
    return this.enqueue(() => this.push(paths, [...this.transports.values()], false));
  }

  /** Resolves when everything queued so far is done. */
  idle(): Promise<void> {
    return this.enqueue(async () => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue.catch(() => undefined);
    await Promise.all([...this.transports.values()].map((t) => t.close().catch(() => undefined)));
    this.transports.clear();
    const watches = [...this.watches.values()];
    for (const w of watches) w.drop();
    await Promise.all(watches.map((w) => w.done));
  }

  private enqueue(task: () => Promise<void>): Promise<void> {
    const run = this.queue.then(task);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async push(paths: readonly string[], targets: SyncTransport[], initial: boolean): Promise<void> {
    const started = Date.now();
    const prepared = await prepareOps(this.opts.root, this.opts.rules, paths);
    for (const r of prepared.refused) this.opts.emit({ type: 'sync.refused', service: this.service, path: r.path, reason: r.reason });
    // No connection now (one is being opened again): its initial sync will carry these files, so nothing is claimed.
    if (prepared.ops.length === 0 || targets.length === 0) return;
    await Promise.all(
      targets.map(async (t) => {
        try {
          const result = await t.apply(prepared.ops);
          for (const e of result.errors) this.opts.emit({ type: 'sync.failed', service: this.service, where: t.where, message: e });
          this.opts.emit({
            type: 'sync.finished',
            service: this.service,
            where: t.where,
            written: prepared.writes,
            deleted: prepared.deletions,
            durationMs: Date.now() - started,
            initial,
          });
          for (const rule of this.opts.rules) {
            if (!rule.rule.then || !prepared.rulesTouched.has(rule.index)) continue;
            const r = await t.run(rule.rule.then);
            this.opts.emit({ type: 'sync.command', service: this.service, where: t.where, command: rule.rule.then, exitCode: r.code, output: r.output.trim().slice(-2000) });
          }
        } catch (err) {
          this.opts.emit({ type: 'sync.failed', service: this.service, where: t.where, message: (err as Error).message });
        }
      }),
    );
  }
}
