import { repositoryOf } from '../build/registry.js';
import type { Instance, ServiceInstances } from '../target/target.js';

/**
 * The running loop's control state, in one place: what waits for a pass, what the pass running now covers, which
 * instances run, and which of them have a sync session and a log stream. It changes only through `reduceControl`;
 * the decisions below are pure functions of it, and the loop's controllers carry them out.
 */
export interface ControlState {
  /** first-pass: the initial pass runs (file changes are held); running: watching; stopping: no new work starts. */
  phase: 'first-pass' | 'running' | 'stopping';
  /** Services waiting for the next pass: why, and whether they are rebuilt even when current. */
  pending: Record<string, { reason: string; force: boolean }>;
  /** The pass running now, if any. */
  pass?: { services: string[]; force: string[] };
  /** Running instances per service, as the target's follower last reported them. */
  instances: Record<string, ServiceInstances>;
  /** Instance keys per service that a sync session was started for (attached or tried). */
  synced: Record<string, string[]>;
  /** Instance keys whose log is followed now. */
  logs: string[];
  /** Instance keys whose log was followed before (a stream opened again shows only new lines). */
  logsSeen: string[];
}

export type ControlAction =
  | { type: 'first-pass.done' }
  | { type: 'queue'; services: string[]; reason: string; force: boolean }
  | { type: 'pass.started'; services: string[]; force: string[] }
  | { type: 'pass.finished' }
  | { type: 'instances'; byService: Record<string, ServiceInstances> }
  | { type: 'sync.started'; service: string; key: string }
  | { type: 'syncs.reset' }
  | { type: 'log.opened'; key: string }
  | { type: 'log.closed'; key: string }
  | { type: 'stop' };

export const initialControl: ControlState = { phase: 'first-pass', pending: {}, instances: {}, synced: {}, logs: [], logsSeen: [] };

/** Pure: the control state after `action`. */
export function reduceControl(state: ControlState, action: ControlAction): ControlState {
  switch (action.type) {
    case 'first-pass.done':
      return state.phase === 'first-pass' ? { ...state, phase: 'running' } : state;
    case 'queue': {
      const pending = { ...state.pending };
      for (const s of action.services) {
        const prev = pending[s];
        pending[s] = { reason: prev?.reason ?? action.reason, force: action.force || (prev?.force ?? false) };
      }
      return { ...state, pending };
    }
    case 'pass.started': {
      const pending = { ...state.pending };
      for (const s of action.services) delete pending[s];
      return { ...state, pending, pass: { services: action.services, force: action.force } };
    }
    case 'pass.finished': {
      const { pass: _done, ...rest } = state;
      return rest;
    }
    case 'instances': {
      // Instances that are gone leave the synced set, so that a new instance with the same key is attached again.
      const synced: Record<string, string[]> = {};
      for (const [service, keys] of Object.entries(state.synced)) {
        const live = new Set((action.byService[service]?.running ?? []).map((i) => i.key));
        synced[service] = keys.filter((k) => live.has(k));
      }
      return { ...state, instances: action.byService, synced };
    }
    case 'sync.started':
      return { ...state, synced: { ...state.synced, [action.service]: [...(state.synced[action.service] ?? []), action.key] } };
    case 'syncs.reset':
      return { ...state, synced: {} };
    case 'log.opened':
      return { ...state, logs: [...state.logs, action.key], logsSeen: state.logsSeen.includes(action.key) ? state.logsSeen : [...state.logsSeen, action.key] };
    case 'log.closed':
      return { ...state, logs: state.logs.filter((k) => k !== action.key) };
    case 'stop':
      return { ...state, phase: 'stopping', pending: {} };
  }
}

/** The next pass to run: everything pending, once the first pass is done and no other pass runs. */
export function nextPass(state: ControlState): { services: string[]; force: string[]; reason: string } | undefined {
  if (state.phase !== 'running' || state.pass) return undefined;
  const services = Object.keys(state.pending);
  if (services.length === 0) return undefined;
  return { services, force: services.filter((s) => state.pending[s]!.force), reason: state.pending[services[0]!]!.reason };
}

/** A service's own containers among its instances: those running its image (not sidecars). */
export function ownInstances(instances: ServiceInstances | undefined, image: string): Instance[] {
  const repo = repositoryOf(image);
  return (instances?.running ?? []).filter((i) => repositoryOf(i.image) === repo || repositoryOf(i.image).endsWith(`/${repo}`));
}

/** For each service with sync rules: the instances to attach a sync session to, and the keys to detach. */
export function syncChanges(
  state: ControlState,
  services: ReadonlyArray<{ name: string; image: string }>,
  connected: (service: string) => string[],
): { service: string; attach: Instance[]; detach: string[] }[] {
  if (state.phase === 'stopping') return [];
  const out = [];
  for (const s of services) {
    const own = ownInstances(state.instances[s.name], s.image);
    const live = new Set(own.map((i) => i.key));
    const tried = new Set(state.synced[s.name] ?? []);
    const attach = own.filter((i) => !tried.has(i.key));
    const detach = connected(s.name).filter((k) => !live.has(k));
    if (attach.length || detach.length) out.push({ service: s.name, attach, detach });
  }
  return out;
}

/** Instances whose log is not followed yet, and whether to show each from its first line. */
export function logsToOpen(state: ControlState, startedAt: number): { service: string; instance: Instance; fromStart: boolean }[] {
  if (state.phase === 'stopping') return [];
  const open = new Set(state.logs);
  const seen = new Set(state.logsSeen);
  const out = [];
  for (const [service, instances] of Object.entries(state.instances)) {
    for (const instance of instances.running) {
      if (open.has(instance.key)) continue;
      // A new instance is shown from its first line; a stream opened again for the same instance only from now.
      const fromStart = !seen.has(instance.key) && instance.startedAt !== undefined && new Date(instance.startedAt).getTime() >= startedAt - 1000;
      out.push({ service, instance, fromStart });
    }
  }
  return out;
}
