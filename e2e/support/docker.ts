import Docker from 'dockerode';
import tar from 'tar-stream';
import { infraEnv } from './env.js';

/** Debian's engine serves API 1.41; asking for it keeps newer dockerode defaults from being refused. */
const DOCKER_API_VERSION = 'v1.41';

let client: Docker | undefined;

export function docker(): Docker {
  if (client) return client;
  const host = infraEnv().dockerHost;
  if (!host.startsWith('unix://')) throw new Error(`DOCKER_HOST must be a unix socket URL here, got "${host}"`);
  client = new Docker({ socketPath: host.slice('unix://'.length), version: DOCKER_API_VERSION });
  return client;
}

interface ProgressMessage {
  stream?: string;
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string; Digest?: string };
}

async function follow(stream: NodeJS.ReadableStream): Promise<ProgressMessage[]> {
  return new Promise((resolve, reject) => {
    docker().modem.followProgress(stream, (err: Error | null, output: ProgressMessage[]) => (err ? reject(err) : resolve(output)));
  });
}

function failure(output: ProgressMessage[]): string | undefined {
  const bad = output.find((m) => m.error || m.errorDetail);
  return bad ? (bad.errorDetail?.message ?? bad.error) : undefined;
}

/** A build-context file with a mode of its own (the classic builder's COPY keeps it; e.g. 0o755 for a program). */
export interface ContextFile {
  content: string | Buffer;
  mode: number;
}

/** Builds an image from in-memory files (a Dockerfile among them) with the engine's classic builder. */
export async function buildImage(files: Record<string, string | Buffer | ContextFile>, tag: string): Promise<{ log: string }> {
  const pack = tar.pack();
  for (const [name, file] of Object.entries(files)) {
    if (typeof file === 'string' || Buffer.isBuffer(file)) pack.entry({ name, mode: 0o644 }, file);
    else pack.entry({ name, mode: file.mode }, file.content);
  }
  pack.finalize();
  const stream = await docker().buildImage(pack as unknown as NodeJS.ReadableStream, { t: tag, rm: true, forcerm: true });
  const output = await follow(stream);
  const log = output.map((m) => m.stream ?? m.status ?? '').join('');
  const error = failure(output);
  if (error) throw new Error(`docker build ${tag} failed: ${error}\n${log}`);
  return { log };
}

/** Pushes a tag to its registry (the local one needs no credentials) and returns the pushed digest. */
export async function pushImage(ref: string): Promise<string> {
  const stream = await docker().getImage(ref).push({ authconfig: { serveraddress: ref.split('/')[0] } });
  const output = await follow(stream);
  const error = failure(output);
  if (error) throw new Error(`docker push ${ref} failed: ${error}`);
  const digest = output.find((m) => m.aux?.Digest)?.aux?.Digest;
  if (!digest) throw new Error(`docker push ${ref} reported no digest: ${JSON.stringify(output.slice(-3))}`);
  return digest;
}

/** Removes local tags created by a test (the registry copy stays; it is content-addressed and small). */
export async function removeImage(ref: string): Promise<void> {
  try {
    await docker().getImage(ref).remove({ noprune: false });
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw err;
  }
}
