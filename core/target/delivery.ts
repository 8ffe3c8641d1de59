import type Dockerode from 'dockerode';
import { dockerClient } from '../build/docker.js';
import { kindLoad, kindPrune } from '../build/kind.js';
import { pushImage } from '../build/push.js';
import { existsInRegistry, registryAuth, type RegistryAuth } from '../build/registry.js';
import type { BuildSkipReason } from '../engine/events.js';
import type { ImageDelivery } from './kubernetes.js';
import type { Reporter } from './target.js';

/** Images go into the kind cluster's nodes (`kind load`); no registry is involved. */
export class KindDelivery implements ImageDelivery {
  private client: Dockerode | undefined;

  constructor(readonly cluster: string) {}

  imageRef(image: string, version: string): string {
    return `${image}:${version}`;
  }

  async imageAtTarget(): Promise<undefined> {
    // The local image is what gets loaded; kindLoad itself skips nodes that already hold it.
    return undefined;
  }

  async deliver(service: string, ref: string, report: Reporter): Promise<void> {
    report({ type: 'deliver.started', service, image: ref, target: 'kind' });
    const docker = (this.client ??= await dockerClient());
    const r = await kindLoad(docker, this.cluster, ref, (message) => report({ type: 'deliver.progress', service, message }));
    report({ type: 'deliver.finished', service, image: ref, skipped: r.loaded.length === 0 });
  }

  async pruneImages(repository: string, keep: string[]): Promise<string[]> {
    const docker = (this.client ??= await dockerClient());
    return kindPrune(docker, this.cluster, repository, keep);
  }
}

/** Images are pushed to a registry the cluster pulls from; one already there is neither built nor pushed. */
export class RegistryDelivery implements ImageDelivery {
  private client: Dockerode | undefined;
  private auth: Promise<RegistryAuth | undefined> | undefined;

  constructor(readonly registry: string) {}

  imageRef(image: string, version: string): string {
    return this.registry ? `${this.registry}/${image}:${version}` : `${image}:${version}`;
  }

  private credentials(): Promise<RegistryAuth | undefined> {
    // Read once per run; a failure is not cached, so the next attempt reads again.
    this.auth ??= registryAuth(this.registry).catch((err: unknown) => {
      this.auth = undefined;
      throw err;
    });
    return this.auth;
  }

  async imageAtTarget(ref: string): Promise<BuildSkipReason | undefined> {
    return (await existsInRegistry(ref, await this.credentials())) ? 'exists-in-registry' : undefined;
  }

  async deliver(service: string, ref: string, report: Reporter): Promise<void> {
    report({ type: 'deliver.started', service, image: ref, target: 'remote' });
    const docker = (this.client ??= await dockerClient());
    await pushImage(docker, ref, await this.credentials(), (message) => report({ type: 'deliver.progress', service, message }));
    report({ type: 'deliver.finished', service, image: ref, skipped: false });
  }

  async pruneImages(): Promise<string[]> {
    // A registry is shared by everyone who pulls from it (and by CI): devloop leaves its tags alone.
    return [];
  }
}
