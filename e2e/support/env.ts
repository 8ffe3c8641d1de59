import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where the e2e infrastructure is: the three values `npm run --silent infra:env` prints. */
export interface InfraEnv {
  kubeconfig: string;
  dockerHost: string;
  registry: string;
}

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const infraScript = path.join(repoRoot, 'e2e/infra/infra.sh');

/** Parses `export NAME=value` lines (the output of `infra.sh env`). */
export function parseExports(text: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const match = /^export ([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (match) vars[match[1]!] = match[2]!.replace(/^(['"])(.*)\1$/, '$2');
  }
  return vars;
}

let cached: InfraEnv | undefined;

/**
 * The infrastructure's coordinates: taken from the environment when set (after `eval "$(npm run --silent infra:env)"`),
 * otherwise from `infra.sh env`. Also exported into process.env so libraries that read it (docker-modem) agree.
 */
export function infraEnv(): InfraEnv {
  if (cached) return cached;
  let vars: Record<string, string | undefined> = process.env;
  if (!process.env.KUBECONFIG || !process.env.DOCKER_HOST || !process.env.DEVLOOP_REGISTRY) {
    const fromScript = parseExports(execFileSync('bash', [infraScript, 'env'], { encoding: 'utf8' }));
    vars = { ...fromScript, ...Object.fromEntries(Object.entries(process.env).filter(([, v]) => v)) };
  }
  cached = {
    kubeconfig: vars.KUBECONFIG ?? '',
    dockerHost: vars.DOCKER_HOST ?? '',
    registry: vars.DEVLOOP_REGISTRY ?? '',
  };
  process.env.KUBECONFIG = cached.kubeconfig;
  process.env.DOCKER_HOST = cached.dockerHost;
  process.env.DEVLOOP_REGISTRY = cached.registry;
  return cached;
}

let scriptVars: Record<string, string> | undefined;
/** What `infra.sh env` prints, parsed (PATH's `$PATH` tail is expanded with this process's PATH). */
function infraScriptExports(): Record<string, string> {
  if (!scriptVars) {
    scriptVars = parseExports(execFileSync('bash', [infraScript, 'env'], { encoding: 'utf8' }));
    if (scriptVars.PATH) scriptVars.PATH = scriptVars.PATH.replace('$PATH', process.env.PATH ?? '');
  }
  return scriptVars;
}

/** One variable of the infrastructure: from the environment, else from `infra.sh env`; fails naming what is missing. */
function infraVar(name: string, what: string): string {
  const value = process.env[name] || infraScriptExports()[name];
  if (!value) throw new Error(`${name} is not set and \`infra.sh env\` does not print it: ${what} is missing (run npm run infra:up)`);
  return value;
}

/** The kubeconfig of the kind cluster `devloop` (context kind-devloop) that `npm run infra:up` creates. */
export function kindKubeconfig(): string {
  const file = infraVar('DEVLOOP_KIND_KUBECONFIG', 'the kind cluster');
  if (!existsSync(file)) throw new Error(`the kind cluster's kubeconfig ${file} does not exist: the kind cluster is not up (run npm run infra:up)`);
  return file;
}

/** istiod's plaintext xDS address (host:port), reachable from pods and from this host. */
export function istiodAddress(): string {
  return infraVar('DEVLOOP_ISTIOD', 'istiod');
}

/** The absolute path of a program infra:up provides (kind, istioctl), looked up on the infrastructure's PATH. */
export function infraTool(name: 'kind' | 'istioctl' | 'kubectl'): string {
  const dirs = [...(process.env.PATH ?? '').split(':'), ...(infraScriptExports().PATH ?? '').split(':')];
  for (const dir of dirs) {
    if (dir && existsSync(path.join(dir, name))) return path.join(dir, name);
  }
  throw new Error(`${name} is not on PATH nor on the PATH \`infra.sh env\` prints (run npm run infra:up)`);
}

/** The environment a devloop process runs with in the e2e tests: the infrastructure's, as `developer`. */
export function devloopEnv(developer: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = infraEnv();
  return {
    ...process.env,
    KUBECONFIG: env.kubeconfig,
    DOCKER_HOST: env.dockerHost,
    DEVLOOP_REGISTRY: env.registry,
    DEVLOOP_DEVELOPER: developer,
    ...extra,
  };
}

/** A name unique to this run, usable in Kubernetes names and image tags. */
export function uniqueName(prefix: string): string {
  const suffix = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  return `${prefix}-${suffix}`.toLowerCase().slice(0, 63);
}

/** Polls `check` until it returns a value other than undefined; fails naming `what` and the last error. */
export async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  opts: { timeoutMs?: number; intervalMs?: number; describe?: () => Promise<string> } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() >= deadline) {
      const detail = opts.describe ? await opts.describe().catch((e: unknown) => `(describe failed: ${String(e)})`) : '';
      const cause = lastError ? ` (last error: ${lastError instanceof Error ? lastError.message : String(lastError)})` : '';
      throw new Error(`timed out waiting for ${what}${cause}${detail ? `\n${detail}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, opts.intervalMs ?? 1000));
  }
}
