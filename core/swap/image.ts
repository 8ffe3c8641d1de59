import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildImage } from '../build/build.js';
import { dockerClient, ensureDockerReachable } from '../build/docker.js';
import { ExternalError, UserError } from '../errors.js';
import type { Reporter } from '../target/target.js';

/** The repository of the agent's image; the tag is a digest of what goes into it. */
export const AGENT_REPOSITORY = 'devloop/swap-agent';
/** What the agent's image is built FROM unless DEVLOOP_SWAP_AGENT_BASE (or --agent-base) names another image with node. */
export const DEFAULT_AGENT_BASE = 'node:24-slim';

const here = path.dirname(fileURLToPath(import.meta.url));
/** The agent's source: present in a checkout (sources, or dist/ beside them), absent from the published package. */
const SOURCE_CANDIDATES = [path.join(here, 'agent/agent.ts'), path.join(here, '../../../core/swap/agent/agent.ts')];
/** The build's bundle (scripts/bundle-swap-agent.mjs). */
const BUNDLE_CANDIDATES = [path.join(here, '../../vendor/swap-agent.js'), path.join(here, '../../dist/vendor/swap-agent.js')];

/**
 * The agent as one JavaScript module. In a checkout it is bundled from its source each time (so the image always
 * matches the code); an installed devloop uses the bundle its build made.
 */
export async function agentBundle(): Promise<string> {
  const source = SOURCE_CANDIDATES.find((f) => existsSync(f));
  if (source) {
    try {
      const { build } = await import('esbuild');
      const out = await build({ entryPoints: [source], bundle: true, platform: 'node', format: 'esm', target: 'node22', write: false, minifyWhitespace: true, minifySyntax: true, logLevel: 'silent' });
      return out.outputFiles[0]!.text;
    } catch (err) {
      // No esbuild (a production install next to sources): the prebuilt bundle below serves.
      if ((err as { code?: string }).code !== 'ERR_MODULE_NOT_FOUND') throw err;
    }
  }
  const bundle = BUNDLE_CANDIDATES.find((f) => existsSync(f));
  if (!bundle) throw new ExternalError('the swap agent’s bundle is missing from this installation (dist/vendor/swap-agent.js)', {});
  return readFile(bundle, 'utf8');
}

export function agentDockerfile(base: string): string {
  return [
    `FROM ${base}`,
    'COPY agent.mjs /devloop/agent.mjs',
    // Numeric: works with any base image, needs no passwd entry.
    'USER 1000:1000',
    'ENTRYPOINT ["node", "/devloop/agent.mjs"]',
    '',
  ].join('\n');
}

/** The content tag: a digest of the Dockerfile (its base included) and the bundle. */
export function agentTag(dockerfile: string, bundle: string): string {
  return createHash('sha256').update(dockerfile).update('\0').update(bundle).digest('hex').slice(0, 16);
}

export interface AgentImage {
  /** The local reference, `devloop/swap-agent:<tag>` (or with the target's registry prefix). */
  ref: string;
  built: boolean;
}

/**
 * Makes sure the agent's image exists locally as `ref(tag)`: built on first use FROM `base`, then reused while
 * neither the agent nor the base changes. A base image that does not exist locally is a user error (nothing is pulled).
 */
export async function ensureAgentImage(base: string, ref: (tag: string) => string, report: Reporter, service: string): Promise<AgentImage> {
  const bundle = await agentBundle();
  const dockerfile = agentDockerfile(base);
  const image = ref(agentTag(dockerfile, bundle));
  const docker = await dockerClient();
  await ensureDockerReachable(docker);
  try {
    await docker.getImage(image).inspect();
    return { ref: image, built: false };
  } catch {
    // Not there yet: build it below.
  }
  try {
    await docker.getImage(base).inspect();
  } catch {
    throw new UserError(`the swap agent's base image ${base} is not in the local Docker engine`, {
      hint: 'build or pull an image with node in it, and name it with DEVLOOP_SWAP_AGENT_BASE or --agent-base',
    });
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-swap-agent-'));
  try {
    await writeFile(path.join(dir, 'Dockerfile'), dockerfile);
    await writeFile(path.join(dir, 'agent.mjs'), bundle);
    report({ type: 'build.started', service, image });
    const started = Date.now();
    await buildImage(docker, { service, contextDir: dir, dockerfile: 'Dockerfile', image, buildArgs: {}, labels: { 'app.kubernetes.io/managed-by': 'devloop' } }, () => undefined);
    report({ type: 'build.finished', service, image, durationMs: Date.now() - started });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return { ref: image, built: true };
}
