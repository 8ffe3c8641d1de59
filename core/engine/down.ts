import type { ProjectConfig } from '../config/types.js';
import type { Target } from '../target/target.js';
import type { EngineBus } from './state.js';

export interface DownOptions {
  project: ProjectConfig;
  developer: string;
  target: Target;
  keepNamespace: boolean;
}

/** Removes everything devloop deployed for this project and developer, and nothing else (see each target). Idempotent. */
export async function down(bus: EngineBus, opts: DownOptions): Promise<void> {
  const started = Date.now();
  const { target } = opts;
  bus.emit({ type: 'run.started', command: 'down', target: target.kind, where: target.where });
  let ok = false;
  try {
    await target.remove({ project: opts.project, developer: opts.developer }, { keepNamespace: opts.keepNamespace }, (e) => bus.emit(e));
    ok = true;
  } finally {
    bus.emit({ type: 'run.finished', ok, durationMs: Date.now() - started, failed: ok ? [] : ['down'] });
  }
}
