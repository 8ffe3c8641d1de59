import type Dockerode from 'dockerode';
import type { ContainerExec } from './channel.js';
import { ArchiveTransport, ReceiverUnavailable, StreamTransport, TarTransport, type SyncTransport } from './transport.js';

/**
 * Opens the best sync channel a container allows: the persistent stream (perl in the container); without it,
 * Docker's archive API on the local Docker target, or one `tar x` per batch elsewhere.
 */
export async function connectSync(exec: ContainerExec, roots: string[], docker?: { docker: Dockerode; container: string }): Promise<SyncTransport> {
  try {
    return await StreamTransport.open(exec, roots);
  } catch (err) {
    if (!(err instanceof ReceiverUnavailable)) throw err;
    if (docker) return new ArchiveTransport(docker.docker, docker.container, exec, roots);
    try {
      return await TarTransport.probe(exec, roots);
    } catch (tarErr) {
      throw new Error(`cannot sync into ${exec.where}: it has neither perl (for the sync stream) nor tar (${(tarErr as Error).message})`, { cause: tarErr });
    }
  }
}
