import type { ProjectConfig, ServiceConfig } from '../config/types.js';
import type { BuildSkipReason, EngineEventInput, TargetKind } from '../engine/events.js';
import type { LogFollow } from '../forward/logs.js';
import type { SyncTransport } from '../sync/transport.js';
import type { SwapContext } from '../swap/session.js';

/**
 * Where devloop runs services: local Docker, a kind cluster, or a cluster fed through a registry. The engine talks
 * to this interface only; everything that differs between targets (delivery, apply or run, what "current" means,
 * removal, following instances, the sync channel, logs, forwards, restarts) lives in its implementations.
 */
export interface Target {
  /** For reports and events only: the engine never branches on it. */
  readonly kind: TargetKind;
  /** "local Docker", "kind-dev/shop-ada". */
  readonly where: string;
  /** What the dashboard's header shows about the target. */
  readonly describe: TargetDescription;
  /** The reference a service's image is built and deployed as. */
  imageRef(image: string, version: string): string;
  /**
   * Renders and checks what each service would deploy, before anything is built or changed. `images` maps every
   * image repository the project builds to the reference it deploys as. A problem the user must fix throws.
   */
  prepare(ctx: TargetContext, req: { services: ReadonlyArray<PlannedDeploy>; images: Record<string, string> }, report: Reporter): Promise<Deployable[]>;
  /** What runs for each service, read without changing anything. */
  inspect(ctx: TargetContext, deployables: ReadonlyArray<Deployable>): Promise<Map<string, Deployed>>;
  /** Creates what services need around them (a namespace, a network) once something is about to change. */
  ensureEnvironment(ctx: TargetContext, report: Reporter): Promise<void>;
  /** Why `ref` need not be built nor delivered (it already is where the target runs images from), or undefined. */
  imageAtTarget(ref: string): Promise<BuildSkipReason | undefined>;
  /** Carries a locally built image to where the target runs it; reports deliver.* events. */
  deliver(service: string, ref: string, report: Reporter): Promise<void>;
  /**
   * Removes the images of `repository` (as devloop delivered them: content-version tags) that the target keeps
   * besides the local engine (kind's nodes), but those in `keep`. Returns what it removed.
   */
  pruneImages(repository: string, keep: string[]): Promise<string[]>;
  /** Applies or runs one service and waits until it is ready; reports deploy.* and rollout.* events. False on failure. */
  deploy(ctx: TargetContext, d: Deployable, previous: Deployed | undefined, opts: DeployOptions, report: Reporter): Promise<boolean>;
  /** Removes everything devloop runs here for this project and developer (down). */
  remove(ctx: TargetContext, opts: { keepNamespace: boolean }, report: Reporter): Promise<void>;
  /** Follows the running instances of every service, and the environment they run in. */
  follow(ctx: TargetContext, listener: FollowListener): Promise<Follower>;
  /** Makes the service's ports reachable on 127.0.0.1 for as long as the forwarder lives. */
  forward(ctx: TargetContext, service: ServiceConfig, report: Reporter): Promise<Forwarder>;
  /** Restarts the service's running instances from their image (a forced rebuild of an unchanged version). */
  restart(ctx: TargetContext, service: string): Promise<void>;
  /**
   * Swaps (core/swap): a Service's traffic carried to a process on the developer's machine. Only targets that run
   * services in a cluster have them; undefined elsewhere.
   */
  swapContext?(ctx: TargetContext, report: Reporter): SwapContext;
  /**
   * Housekeeping at the start of a run, for targets shared with others: removes what other developers left behind
   * and no longer keep alive (expired leases). Reports what it removed; a failure only warns.
   */
  tidy?(ctx: TargetContext, report: Reporter): Promise<void>;
  /** Lines about the environment beyond the services' own status (a shared cluster's routes and other developers). */
  overview?(ctx: TargetContext): Promise<string[]>;
}

export interface TargetDescription {
  context?: string;
  namespace?: string;
  registry?: string;
}

/** Who devloop acts for: the project and developer whose objects it owns. */
export interface TargetContext {
  project: ProjectConfig;
  developer: string;
}

export type Reporter = (event: EngineEventInput) => void;

/** A service with its content version and image reference, as the plan has it. */
export interface PlannedDeploy {
  service: ServiceConfig;
  version: string;
  ref: string;
}

/** What the target will deploy for a service, with a fingerprint of it for "is it current". */
export interface Deployable extends PlannedDeploy {
  /** A hash of everything deployed besides the image (rendered manifests, ports); equal hashes deploy the same. */
  configHash: string;
  /** Target-specific payload (rendered objects, container ports). */
  detail: unknown;
}

/** What runs for a service. `current` is the one definition used by `up` (skip) and `status` (current/outdated). */
export interface Deployed {
  service: string;
  version: string;
  /** Same version, same configuration, and every instance rolled out and running. */
  current: boolean;
  /** Where it runs: a namespace, a container. */
  where: string;
  image?: string;
  ready: number;
  desired: number;
  /** Target-specific memory of the last deploy (the recorded objects, to prune). */
  detail?: unknown;
  /** One line on how it is served, where that is not obvious ("baseline shop runs it", "forked: …"). */
  note?: string;
}

export interface DeployOptions {
  timeoutMs: number;
  signal?: AbortSignal;
}

/** One running instance (a pod's container, a local container) of a service. */
export interface Instance {
  /** Changes whenever it is a new instance (a restart counts): the loop attaches syncs and logs per key. */
  key: string;
  image: string;
  /** When it started (RFC 3339), to show its log from the first line. */
  startedAt?: string;
  /** For messages: "pod web-7d9f/web". */
  where: string;
  /** Opens the sync channel into the instance, roots being the container directories rules write to. */
  connectSync(roots: string[]): Promise<SyncTransport>;
  /** Follows the instance's log: from its first line, or from now. */
  followLog(fromStart: boolean, onLine: (line: string) => void): Promise<LogFollow>;
}

export interface ServiceInstances {
  running: Instance[];
  ready: number;
  total: number;
  /** Where traffic goes now (a ready pod), for forwarders. */
  readyAt?: string;
}

export interface FollowListener {
  /** The whole picture after each change. */
  onChange(byService: Map<string, ServiceInstances>): void;
  /** Following failed for a while (it keeps trying). */
  onError(message: string): void;
  /**
   * What the services run in went away behind devloop's back (the namespace was deleted): `gone` once nothing of it
   * is left, so that deploying again can recreate it.
   */
  onLost(what: string, gone: boolean): void;
}

export interface Follower {
  close(): Promise<void>;
}

export interface Forwarder {
  /** The service's instances changed: point the forwards at the ready one. */
  update(instances: ServiceInstances): void;
  close(): Promise<void>;
}

export const NO_INSTANCES: ServiceInstances = { running: [], ready: 0, total: 0 };
