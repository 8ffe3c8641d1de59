import type { EngineEvent, EngineEventInput, LoopDecision, PlannedService, TargetKind } from './events.js';
import { EventBus } from './bus.js';
import { buildFailedLine } from './messages.js';

export type ServicePhase =
  | 'pending'
  | 'current'
  | 'building'
  | 'built'
  | 'build-failed'
  | 'blocked'
  | 'delivering'
  | 'delivered'
  | 'deliver-failed'
  | 'deploying'
  | 'deploy-failed'
  | 'rolling-out'
  | 'ready'
  | 'rollout-failed';

export interface ServiceState {
  name: string;
  version: string;
  image: string;
  phase: ServicePhase;
  /** Build step "n/total" while building. */
  step?: string;
  ready?: number;
  desired?: number;
  /** One line saying why the service failed, when it did. */
  problem?: string;
  /** How long the last build, and the last deploy until ready, took. */
  lastBuildMs?: number;
  lastDeployMs?: number;
  /** Layers pushed (or load messages seen) during the current delivery. */
  deliverySteps?: number;
  /** File sync into the service's containers (the running loop only). */
  sync?: SyncStatus;
  /** Active port-forwards, "127.0.0.1:8080 → pod web-…:8080". */
  forwards?: Record<string, string>;
}

export interface SyncStatus {
  state: 'connected' | 'synced' | 'failed' | 'disconnected';
  mode?: 'stream' | 'tar' | 'archive';
  /** When the last batch landed, and how many files it carried. */
  lastAt?: number;
  lastFiles?: number;
  lastMs?: number;
  problem?: string;
}

/** The running loop's own state (absent for one-pass commands). */
export interface LoopState {
  watching: boolean;
  /** Services being rebuilt or redeployed right now. */
  updating: string[];
  lastDecisions: LoopDecision[];
  /** The last devloop.yaml problem, until a good reload. */
  configProblem?: string;
}

export interface EngineState {
  command?: string;
  target?: TargetKind;
  where?: string;
  startedAt?: number;
  finished?: { ok: boolean; durationMs: number; failed: string[] };
  services: Record<string, ServiceState>;
  order: string[];
  loop?: LoopState;
  /** A bug devloop ran into (the command stops after it). */
  internalError?: string;
}

// Log lines and warnings are not state: renderers keep what they show of them (bounded), e.g. the dashboard's Activity.
export const initialState: EngineState = { services: {}, order: [] };

function fresh(p: PlannedService): ServiceState {
  return { name: p.name, version: p.version, image: p.image, phase: 'pending' };
}

function update(state: EngineState, name: string, patch: (s: ServiceState) => Partial<ServiceState>): EngineState {
  const current = state.services[name] ?? { ...fresh({ name, version: '', image: '', dependsOn: [] }) };
  const order = state.order.includes(name) ? state.order : [...state.order, name];
  return { ...state, order, services: { ...state.services, [name]: { ...current, ...patch(current) } } };
}

/** Pure: the state after `event`. The terminal UI and `status` views are functions of this. */
export function reduce(state: EngineState, event: EngineEvent): EngineState {
  switch (event.type) {
    case 'run.started':
      return { ...initialState, command: event.command, target: event.target, where: event.where, startedAt: event.at };
    case 'plan.computed': {
      const services: Record<string, ServiceState> = {};
      for (const p of event.services) services[p.name] = fresh(p);
      return { ...state, services, order: event.services.map((s) => s.name) };
    }
    case 'service.current':
      return update(state, event.service, () => ({ phase: 'current', version: event.version }));
    case 'build.started':
      return update(state, event.service, () => ({ phase: 'building', image: event.image, step: undefined }));
    case 'build.step':
      return update(state, event.service, () => ({ step: `${event.step}/${event.total}` }));
    case 'build.finished':
      return update(state, event.service, () => ({ phase: 'built', image: event.image, lastBuildMs: event.durationMs }));
    case 'build.skipped':
      return update(state, event.service, () => ({ phase: 'built', image: event.image }));
    case 'build.failed':
      return update(state, event.service, () => ({ phase: 'build-failed', problem: buildFailedLine(event) }));
    case 'build.blocked':
      return update(state, event.service, () => ({ phase: 'blocked', problem: `not built: ${event.because}` }));
    case 'deliver.started':
      return update(state, event.service, () => ({ phase: 'delivering', deliverySteps: 0 }));
    case 'deliver.progress':
      return update(state, event.service, (s) => ({ deliverySteps: (s.deliverySteps ?? 0) + 1 }));
    case 'deliver.finished':
      return update(state, event.service, () => ({ phase: 'delivered' }));
    case 'deliver.failed':
      return update(state, event.service, () => ({ phase: 'deliver-failed', problem: event.message }));
    case 'deploy.applied':
      return update(state, event.service, () => ({ phase: 'rolling-out' }));
    case 'deploy.failed':
      return update(state, event.service, () => ({ phase: 'deploy-failed', problem: event.message }));
    case 'rollout.progress':
      return update(state, event.service, () => ({ ready: event.ready, desired: event.desired }));
    case 'rollout.ready':
      return update(state, event.service, () => ({ phase: 'ready', lastDeployMs: event.durationMs }));
    case 'pods.changed':
      return update(state, event.service, () => ({ ready: event.ready, desired: event.total }));
    case 'rollout.failed':
      return update(state, event.service, () => ({ phase: 'rollout-failed', problem: `${event.reason}: ${event.message}` }));
    case 'internal.error':
      return { ...state, internalError: event.message };
    case 'run.finished':
      return { ...state, finished: { ok: event.ok, durationMs: event.durationMs, failed: event.failed } };
    case 'watch.started':
      return { ...state, loop: { ...loopOf(state), watching: true } };
    case 'watch.paused':
      return { ...state, loop: { ...loopOf(state), watching: !event.paused } };
    case 'watch.batch':
      return { ...state, loop: { ...loopOf(state), lastDecisions: event.decisions } };
    case 'pass.started': {
      let next: EngineState = { ...state, loop: { ...loopOf(state), updating: event.services } };
      for (const name of event.services) {
        const version = event.versions?.[name];
        next = update(next, name, (s) => ({ phase: 'pending', problem: undefined, ...(version ? { version } : {}) }));
      }
      return next;
    }
    case 'pass.finished':
      return { ...state, loop: { ...loopOf(state), updating: [] } };
    case 'config.reloaded': {
      const { configProblem: _dropped, ...loop } = loopOf(state);
      return { ...state, loop };
    }
    case 'config.failed':
      return { ...state, loop: { ...loopOf(state), configProblem: event.message } };
    case 'sync.connected':
      return update(state, event.service, (s) => ({ sync: { ...s.sync, state: 'connected', mode: event.mode, problem: undefined } }));
    case 'sync.disconnected':
      return update(state, event.service, (s) => ({ sync: { ...s.sync, state: 'disconnected' } }));
    case 'sync.finished':
      return update(state, event.service, (s) => ({
        sync: { ...s.sync, state: 'synced', lastAt: event.at, lastFiles: event.written + event.deleted, lastMs: event.durationMs, problem: undefined },
      }));
    case 'sync.refused':
      return update(state, event.service, (s) => ({ sync: { ...s.sync, state: s.sync?.state ?? 'failed', problem: `${event.path}: ${event.reason}` } }));
    case 'sync.failed':
      return update(state, event.service, (s) => ({ sync: { ...s.sync, state: 'failed', problem: event.message } }));
    case 'forward.ready':
      return update(state, event.service, (s) => ({ forwards: { ...s.forwards, [String(event.local)]: `127.0.0.1:${event.local} → ${event.where}:${event.remote}` } }));
    case 'forward.failed':
      return update(state, event.service, (s) => ({ forwards: { ...s.forwards, [String(event.local)]: `127.0.0.1:${event.local}: ${event.message}` } }));
    default:
      return state;
  }
}

function loopOf(state: EngineState): LoopState {
  return state.loop ?? { watching: false, updating: [], lastDecisions: [] };
}

/** The engine's bus: stamps events with the time and folds them into EngineState. */
export class EngineBus extends EventBus<EngineState, EngineEvent> {
  constructor() {
    super(initialState, reduce);
  }

  emit(event: EngineEventInput): void {
    this.publish({ ...event, at: Date.now() } as EngineEvent);
  }
}
