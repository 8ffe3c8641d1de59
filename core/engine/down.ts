import type { ProjectConfig } from '../config/types.js';
import { DockerBuilder, type ImageBuilder } from '../build/builder.js';
import { repositoryOf } from '../build/registry.js';
import type { Target } from '../target/target.js';
import type { EngineBus } from './state.js';

export interface DownOptions {
  project: ProjectConfig;
  developer: string;
  target: Target;
  keepNamespace: boolean;
  /** Also remove every image devloop built for this project and developer (locally and on the target's nodes). */
  images?: boolean;
  builder?: ImageBuilder;
}

/** Removes everything devloop deployed for this project and developer, and nothing else (see each target). Idempotent. */
export async function down(bus: EngineBus, opts: DownOptions): Promise<void> {
  const started = Date.now();
  const { target } = opts;
  bus.emit({ type: 'run.started', command: 'down', target: target.kind, where: target.where });
  let ok = false;
  try {
    await target.remove({ project: opts.project, developer: opts.developer }, { keepNamespace: opts.keepNamespace }, (e) => bus.emit(e));
    if (opts.images) {
      const builder = opts.builder ?? new DockerBuilder();
      for (const s of opts.project.services) {
        const local = await builder.prune({ project: opts.project.name, developer: opts.developer }, s.name, 0, []);
        if (local.removed.length) bus.emit({ type: 'images.pruned', service: s.name, where: 'local engine', images: local.removed });
        // The repository the target knows the service's images by (with the registry prefix where it has one).
        const remote = await target.pruneImages(repositoryOf(target.imageRef(s.image, '0000000000000000')), []);
        if (remote.length) bus.emit({ type: 'images.pruned', service: s.name, where: target.where, images: remote });
      }
    }
    ok = true;
  } finally {
    bus.emit({ type: 'run.finished', ok, durationMs: Date.now() - started, failed: ok ? [] : ['down'] });
  }
}
