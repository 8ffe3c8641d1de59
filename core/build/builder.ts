import type Dockerode from 'dockerode';
import type { BuildProgress, BuildRequest } from './build.js';
import { dockerCallFailed, dockerClient, ensureDockerReachable } from './docker.js';
import { ownerLabels, type Owner } from '../deploy/labels.js';

/**
 * Builds images on the machine devloop runs on. The engine asks it whether an image exists and to build one; the
 * target then delivers the result. A failed build throws BuildFailure (see build.ts).
 */
export interface ImageBuilder {
  /** Fails with a user-facing error when nothing can be built (no engine). */
  ensureReachable(): Promise<void>;
  /** Whether an image with this reference was built before (the tag is a content version). */
  exists(ref: string): Promise<boolean>;
  build(req: BuildRequest, onProgress: (p: BuildProgress) => void): Promise<void>;
  /**
   * Removes images devloop built (by its ownership labels) for one service of this owner, but the newest `keep` and
   * those in `protect`; an image a container still uses stays. Returns the references removed and those kept.
   */
  prune(owner: Owner, service: string, keep: number, protect: string[]): Promise<{ removed: string[]; kept: string[] }>;
}

/** The local Docker engine (dockerode), loaded only when something is asked of it. */
export class DockerBuilder implements ImageBuilder {
  private client: Dockerode | undefined;

  private async docker(): Promise<Dockerode> {
    return (this.client ??= await dockerClient());
  }

  async ensureReachable(): Promise<void> {
    await ensureDockerReachable(await this.docker());
  }

  async exists(ref: string): Promise<boolean> {
    try {
      await (await this.docker()).getImage(ref).inspect();
      return true;
    } catch {
      // Not found (or not inspectable): build it; a real engine problem shows up in the build itself.
      return false;
    }
  }

  async prune(owner: Owner, service: string, keep: number, protect: string[]): Promise<{ removed: string[]; kept: string[] }> {
    const docker = await this.docker();
    const label = Object.entries(ownerLabels(owner, service)).map(([k, v]) => `${k}=${v}`);
    // Only images carrying devloop's labels for this project, developer and service: never one it did not build.
    const images = (await docker.listImages({ filters: { label } })).sort((a, b) => b.Created - a.Created);
    const removed: string[] = [];
    const kept: string[] = [];
    for (const [i, image] of images.entries()) {
      const tags = (image.RepoTags ?? []).filter((t) => t !== '<none>:<none>');
      if (i < keep || tags.some((t) => protect.includes(t))) {
        kept.push(...tags);
        continue;
      }
      for (const tag of tags) {
        try {
          await docker.getImage(tag).remove();
          removed.push(tag);
        } catch (err) {
          // In use by a container (409) or already gone (404): it stays, or there is nothing to do.
          if (![404, 409].includes((err as { statusCode?: number }).statusCode ?? 0)) throw dockerCallFailed(`docker rmi ${tag}`, err);
          kept.push(tag);
        }
      }
    }
    return { removed, kept };
  }

  async build(req: BuildRequest, onProgress: (p: BuildProgress) => void): Promise<void> {
    // The build's modules (tar streams, .dockerignore rules) are loaded only when something is built.
    const { buildImage } = await import('./build.js');
    await buildImage(await this.docker(), req, onProgress);
  }
}
