import type Dockerode from 'dockerode';
import { ExternalError, UserError } from '../errors.js';

/**
 * The Docker Engine API version devloop speaks. 1.41 is what Docker 20.10 serves; newer engines still accept it.
 * DOCKER_API_VERSION overrides, as it does for the docker CLI.
 */
export const DOCKER_API_VERSION = process.env.DOCKER_API_VERSION ? `v${process.env.DOCKER_API_VERSION.replace(/^v/, '')}` : 'v1.41';

let client: Dockerode | undefined;

/** The build's one-module bundle of dockerode (scripts/bundle-vendor.mjs; package.json "imports"). */
const BUNDLED_CLIENT = '#docker-client';

/** dockerode: the bundle, which loads in half the time; without a build (sources run by the test runner), the package. */
async function loadDockerode(): Promise<typeof Dockerode> {
  try {
    return ((await import(BUNDLED_CLIENT)) as { default: typeof Dockerode }).default;
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_IMPORT_NOT_DEFINED') return (await import('dockerode')).default;
    throw err;
  }
}

/** One shared dockerode client (DOCKER_HOST is honoured by docker-modem); loaded lazily. */
export async function dockerClient(): Promise<Dockerode> {
  if (!client) {
    const Docker = await loadDockerode();
    client = new Docker({ version: DOCKER_API_VERSION });
  }
  return client;
}

/** Fails with a user-facing error when the engine is not reachable. */
export async function ensureDockerReachable(docker: Dockerode): Promise<void> {
  try {
    await docker.ping();
  } catch (err) {
    throw new UserError(`cannot reach the Docker engine (${(err as Error).message})`, {
      hint: 'start Docker, or point DOCKER_HOST at a running engine',
      cause: err,
    });
  }
}

/** Reads a dockerode progress stream to the end; resolves with every message, rejects on a stream error. */
export function followProgress<T extends object>(
  docker: Dockerode,
  stream: NodeJS.ReadableStream,
  onMessage: (msg: T) => void,
): Promise<T[]> {
  return new Promise((resolve, reject) => {
    docker.modem.followProgress(
      stream,
      (err: Error | null, output: T[]) => (err ? reject(err) : resolve(output)),
      (msg: T) => onMessage(msg),
    );
  });
}

export function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { statusCode?: number }).statusCode === 404;
}

export function dockerCallFailed(call: string, err: unknown): ExternalError {
  const e = err as { message?: string; json?: { message?: string } };
  return new ExternalError(`${call} failed: ${e.json?.message ?? e.message ?? String(err)}`, { cause: err });
}
