import type Dockerode from 'dockerode';
import type { BuildProgress, BuildRequest } from './build.js';
import type { BuilderChoice } from './buildkit.js';
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
   * With `when`, the images are looked up at once and removed only once `when` resolves true (nothing is removed
   * when it resolves false or rejects): the lookup overlaps what the removal waits for.
   */
  prune(owner: Owner, service: string, keep: number, protect: string[], when?: Promise<boolean>): Promise<{ removed: string[]; kept: string[] }>;
}

/**
 * The local Docker engine (dockerode), loaded only when something is asked of it. Builds go through BuildKit when
 * the engine serves it (cache mounts persist between builds), else through the classic builder: the first build
 * then says why.
 */
export class DockerBuilder implements ImageBuilder {
  private client: Dockerode | undefined;
  private choice: Promise<BuilderChoice> | undefined;
  private fallbackShown = false;
  /** BuildKit builds fetch their context through a session until the engine shows it cannot open one. */
  private contextSessions = true;

  /** `env` decides as the environment does (DOCKER_BUILDKIT=0 asks for the classic builder). */
  constructor(private readonly env: NodeJS.ProcessEnv = process.env) {}

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

  async prune(owner: Owner, service: string, keep: number, protect: string[], when?: Promise<boolean>): Promise<{ removed: string[]; kept: string[] }> {
    const label = Object.entries(ownerLabels(owner, service)).map(([k, v]) => `${k}=${v}`);
    // Only images carrying devloop's labels for this project, developer and service: never one it did not build.
    // (The engine takes a while to list its images, so the list is asked for while `when` is pending.)
    const listed = this.docker().then((docker) => docker.listImages({ filters: { label } }));
    const [list, go] = await Promise.allSettled([listed, when ?? Promise.resolve(true)]);
    if (go.status === 'rejected' || !go.value) return { removed: [], kept: [] };
    if (list.status === 'rejected') throw list.reason;
    const docker = await this.docker();
    const images = list.value.sort((a, b) => b.Created - a.Created);
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
    const { buildImage, BuildkitUnavailable, SessionContextUnavailable } = await import('./build.js');
    const docker = await this.docker();
    let choice = await this.builderChoice(docker);
    if (choice.kind === 'buildkit') {
      try {
        if (this.contextSessions) {
          try {
            await buildImage(docker, req, onProgress, 'buildkit', 'session');
            return;
          } catch (err) {
            if (!(err instanceof SessionContextUnavailable)) throw err;
            // The whole context goes as a tar instead: this build, or (the engine has no sessions) every build.
            if (err.lasting) this.contextSessions = false;
            onProgress({ kind: 'notice', message: `sending the whole build context${err.lasting ? '' : ' for this build'}: ${err.message}` });
          }
        }
        await buildImage(docker, req, onProgress, 'buildkit', 'tar');
        return;
      } catch (err) {
        if (!(err instanceof BuildkitUnavailable)) throw err;
        choice = { kind: 'classic', reason: `the engine refused BuildKit (${err.message})` };
        this.choice = Promise.resolve(choice);
      }
    }
    if (!this.fallbackShown) {
      this.fallbackShown = true;
      onProgress({ kind: 'notice', message: `building with the classic builder: ${choice.reason}; cache mounts and parallel stages need BuildKit` });
    }
    await buildImage(docker, req, onProgress, 'classic');
  }

  /** Asked of the engine once: its API version and OS say whether it serves BuildKit. */
  private builderChoice(docker: Dockerode): Promise<BuilderChoice> {
    return (this.choice ??= docker.version().then(
      // buildkit.ts brings protobufjs: loaded only when something is built.
      async (v) => (await import('./buildkit.js')).chooseBuilder({ apiVersion: v.ApiVersion, os: v.Os }, this.env),
      (err: unknown) => {
        // Let a later build ask again: the engine may just have been unreachable for a moment.
        this.choice = undefined;
        throw dockerCallFailed('docker version', err);
      },
    ));
  }
}
