import type Dockerode from 'dockerode';
import type { BuildProgress, BuildRequest } from './build.js';
import { dockerClient, ensureDockerReachable } from './docker.js';

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

  async build(req: BuildRequest, onProgress: (p: BuildProgress) => void): Promise<void> {
    // The build's modules (tar streams, .dockerignore rules) are loaded only when something is built.
    const { buildImage } = await import('./build.js');
    await buildImage(await this.docker(), req, onProgress);
  }
}
