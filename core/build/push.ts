import type Dockerode from 'dockerode';
import { ExternalError } from '../errors.js';
import { followProgress } from './docker.js';
import { parseImageRef, type RegistryAuth } from './registry.js';

interface PushMessage {
  status?: string;
  id?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { Digest?: string };
}

/** Pushes a locally tagged image to its registry; reports per-layer milestones; resolves with the pushed digest. */
export async function pushImage(
  docker: Dockerode,
  ref: string,
  auth: RegistryAuth | undefined,
  onProgress: (message: string) => void,
): Promise<string | undefined> {
  const { tag } = parseImageRef(ref);
  const name = ref.slice(0, ref.length - tag.length - 1);
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.getImage(name).push({ tag, ...(auth ? { authconfig: auth } : {}) } as Dockerode.ImagePushOptions);
  } catch (err) {
    throw new ExternalError(`docker push ${ref} failed: ${(err as Error).message}`, { cause: err });
  }
  let error: string | undefined;
  let digest: string | undefined;
  await followProgress<PushMessage>(docker, stream, (msg) => {
    if (msg.error !== undefined || msg.errorDetail?.message !== undefined) error = msg.errorDetail?.message ?? msg.error;
    if (msg.aux?.Digest) digest = msg.aux.Digest;
    // Byte-level "Pushing" updates are noise at this level; layer milestones are what a user wants to see.
    if (msg.status && msg.id && /^(Pushed|Layer already exists|Mounted from)/.test(msg.status)) onProgress(`${msg.id}: ${msg.status}`);
  });
  if (error !== undefined) throw new ExternalError(`docker push ${ref} failed: ${error}`);
  return digest;
}
