/**
 * Everything the engine reports, as one discriminated union. Renderers (plain lines, JSON lines, the terminal UI)
 * subscribe to these; the engine never formats output itself.
 */
export type TargetKind = 'kind' | 'remote' | 'docker';

/** Why an image was not built: it exists in the local engine, or already where the target runs it from. */
export type BuildSkipReason = 'exists-locally' | 'exists-in-registry';

export interface PlannedService {
  name: string;
  /** Content version: the image tag and the value recorded in the cluster. */
  version: string;
  image: string;
  dependsOn: string[];
}

export type EngineEvent =
  | { type: 'run.started'; at: number; command: string; target: TargetKind; where: string }
  | { type: 'plan.computed'; at: number; services: PlannedService[] }
  | { type: 'namespace.created'; at: number; namespace: string }
  | { type: 'service.current'; at: number; service: string; version: string }
  | { type: 'build.started'; at: number; service: string; image: string }
  | { type: 'build.step'; at: number; service: string; step: number; total: number; instruction: string }
  | { type: 'build.log'; at: number; service: string; line: string }
  | { type: 'build.finished'; at: number; service: string; image: string; durationMs: number }
  | { type: 'build.skipped'; at: number; service: string; image: string; reason: BuildSkipReason }
  | {
      type: 'build.failed';
      at: number;
      service: string;
      message: string;
      /** e.g. "Step 3/5 : RUN make" with its Dockerfile location when known. */
      step?: string;
      lastLines: string[];
    }
  | { type: 'build.blocked'; at: number; service: string; because: string }
  | { type: 'deliver.started'; at: number; service: string; image: string; target: TargetKind }
  | { type: 'deliver.progress'; at: number; service: string; message: string }
  | { type: 'deliver.finished'; at: number; service: string; image: string; skipped: boolean }
  | { type: 'deliver.failed'; at: number; service: string; message: string }
  | { type: 'deploy.applied'; at: number; service: string; objects: string[] }
  | { type: 'deploy.pruned'; at: number; service: string; object: string }
  | { type: 'deploy.failed'; at: number; service: string; message: string }
  | { type: 'rollout.progress'; at: number; service: string; ready: number; desired: number; message?: string }
  | { type: 'rollout.ready'; at: number; service: string; durationMs: number }
  /** Older images of the service that devloop built were removed (`where`: the local engine, or the target's nodes). */
  | { type: 'images.pruned'; at: number; service: string; where: string; images: string[] }
  /** The service's pods (containers on Docker) as the loop follows them: `ready` of `total` not being deleted. */
  | { type: 'pods.changed'; at: number; service: string; ready: number; total: number }
  | { type: 'rollout.failed'; at: number; service: string; reason: string; message: string }
  | { type: 'down.deleted'; at: number; object: string }
  | { type: 'down.kept'; at: number; object: string; reason: string }
  | { type: 'warning'; at: number; service?: string; message: string }
  | { type: 'run.finished'; at: number; ok: boolean; durationMs: number; failed: string[] }
  // The running loop (`devloop up` without --once): watching, syncing, forwarding, logs.
  | { type: 'watch.started'; at: number; root: string; quietMs: number }
  | { type: 'watch.paused'; at: number; paused: boolean }
  | { type: 'watch.batch'; at: number; files: number; decisions: LoopDecision[] }
  | { type: 'watch.failed'; at: number; message: string }
  | { type: 'pass.started'; at: number; services: string[]; reason: string; versions?: Record<string, string> }
  | { type: 'pass.finished'; at: number; ok: boolean; durationMs: number; failed: string[] }
  | { type: 'config.reloaded'; at: number; file: string; services: string[] }
  | { type: 'config.failed'; at: number; message: string }
  | { type: 'sync.connected'; at: number; service: string; where: string; mode: 'stream' | 'tar' | 'archive' }
  | { type: 'sync.disconnected'; at: number; service: string; where: string; reason: string }
  | { type: 'sync.finished'; at: number; service: string; where: string; written: number; deleted: number; durationMs: number; initial: boolean }
  | { type: 'sync.refused'; at: number; service: string; path: string; reason: string }
  | { type: 'sync.failed'; at: number; service: string; where?: string; message: string }
  | { type: 'sync.command'; at: number; service: string; where: string; command: string[]; exitCode: number; output: string }
  | { type: 'forward.ready'; at: number; service: string; local: number; remote: number; where: string }
  | { type: 'forward.failed'; at: number; service: string; local: number; remote: number; message: string }
  | { type: 'log.line'; at: number; service: string; where: string; line: string }
  | { type: 'loop.stopped'; at: number; cleanup: boolean }
  /** What the services run in was removed behind devloop's back; `redeploying` once it is gone and being recreated. */
  | { type: 'environment.lost'; at: number; what: string; redeploying: boolean }
  /** Shared cluster: the baseline runs the service at the developer's version, so it is not forked (or no longer). */
  | { type: 'service.baseline'; at: number; service: string; version: string; namespace: string }
  /** Shared cluster: the service is forked because its version differs from the baseline's (absent there: null). */
  | { type: 'service.forked'; at: number; service: string; version: string; baselineVersion: string | null; namespace: string }
  /** Shared cluster: requests to `host` carrying the developer's key now go to `to` (or no longer do). */
  | { type: 'route.added'; at: number; service: string; host: string; to: string; developer: string }
  | { type: 'route.removed'; at: number; host: string; developer: string; reason: string }
  /** Shared cluster: a developer's lease ended, and what they had there was removed. */
  | { type: 'lease.expired'; at: number; developer: string; namespace: string; removed: number }
  /** A bug in devloop (an error nobody handled): the command stops cleanly after it. */
  | { type: 'internal.error'; at: number; message: string }
  // Swap (core/swap): a Service's traffic carried to a process on the developer's machine.
  | { type: 'swap.started'; at: number; service: string; namespace: string; mode: 'global' | 'personal'; ports: SwapPortEvent[]; agent: string; leaseSeconds: number; routeKey?: string }
  /** Connections carried through the tunnel so far (at most about once a second). */
  | { type: 'swap.traffic'; at: number; service: string; connections: number; requests: number }
  /** A connection from the cluster found nothing listening on the local port (the caller got a reset); repeated at most every 5 s. */
  | { type: 'swap.refused'; at: number; service: string; local: number; message: string }
  /** The tunnel or the agent went away; devloop is reconnecting (to the agent the cluster recreates). */
  | { type: 'swap.reconnecting'; at: number; service: string; reason: string }
  | { type: 'swap.reconnected'; at: number; service: string; agent: string; afterMs: number }
  /** The Service is back as it was. `by`: devloop itself, or the cluster (the agent, after the lease ran out). */
  | { type: 'swap.restored'; at: number; service: string; namespace: string; by: 'devloop' | 'cluster'; reason: string }
  | { type: 'swap.failed'; at: number; service: string; message: string };

/** A swapped Service port and the local port it reaches. */
export interface SwapPortEvent {
  port: number;
  targetPort: number;
  local: number;
  name?: string;
}

/** What one batch of file changes means for one service. */
export interface LoopDecision {
  service: string;
  action: 'sync' | 'rebuild' | 'redeploy';
  files: number;
  reason: string;
}

export type EngineEventType = EngineEvent['type'];

// Every event type, written as a record over the union so that a type added to (or removed from) the union without
// being listed here does not compile.
const EVENT_TYPE_RECORD: Record<EngineEventType, true> = {
  'run.started': true, 'plan.computed': true, 'namespace.created': true, 'service.current': true, 'build.started': true,
  'build.step': true, 'build.log': true, 'build.finished': true, 'build.skipped': true, 'build.failed': true,
  'build.blocked': true, 'deliver.started': true, 'deliver.progress': true, 'deliver.finished': true, 'deliver.failed': true,
  'deploy.applied': true, 'deploy.pruned': true, 'deploy.failed': true, 'rollout.progress': true, 'rollout.ready': true,
  'pods.changed': true, 'rollout.failed': true, 'images.pruned': true, 'down.deleted': true, 'down.kept': true, warning: true, 'run.finished': true,
  'watch.started': true, 'watch.paused': true, 'watch.batch': true, 'watch.failed': true, 'pass.started': true,
  'pass.finished': true, 'config.reloaded': true, 'config.failed': true, 'sync.connected': true, 'sync.disconnected': true,
  'sync.finished': true, 'sync.refused': true, 'sync.failed': true, 'sync.command': true, 'forward.ready': true,
  'forward.failed': true, 'log.line': true, 'loop.stopped': true, 'internal.error': true, 'environment.lost': true,
  'swap.started': true, 'swap.traffic': true, 'swap.refused': true, 'swap.reconnecting': true, 'swap.reconnected': true,
  'swap.restored': true, 'swap.failed': true,
  'service.baseline': true, 'service.forked': true, 'route.added': true, 'route.removed': true, 'lease.expired': true,
};

/** The event types this build knows: renderers treat any other type as one added later (shown generically). */
export const EVENT_TYPES: ReadonlySet<string> = new Set(Object.keys(EVENT_TYPE_RECORD));

/** An event before the bus stamps it with the time. */
export type EngineEventInput = EngineEvent extends infer E ? (E extends { at: number } ? Omit<E, 'at'> : never) : never;
