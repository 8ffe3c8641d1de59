import { existsSync } from 'node:fs';
import nodeModule from 'node:module';
import os from 'node:os';
import path from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { ExternalError, UserError } from '../errors.js';

/** The Kubernetes clients one run needs, created from one kubeconfig context. */
export interface Kube {
  lib: typeof k8s;
  config: k8s.KubeConfig;
  context: string;
  objects: k8s.KubernetesObjectApi;
  core: k8s.CoreV1Api;
  apps: k8s.AppsV1Api;
}

/** The kubeconfig files kubectl would read, that exist. */
export function kubeconfigFiles(): string[] {
  const env = process.env.KUBECONFIG;
  const files = env ? env.split(path.delimiter).filter(Boolean) : [path.join(os.homedir(), '.kube', 'config')];
  return files.filter((f) => existsSync(f));
}

let clientLibrary: Promise<typeof k8s> | undefined;

/** The build's one-module bundle of @kubernetes/client-node (scripts/bundle-vendor.mjs; package.json "imports"). */
const BUNDLED_CLIENT = '#kube-client';

/**
 * Starts loading the Kubernetes client so it overlaps with other start-up work. The bundle is preferred: the package
 * itself is about 1,000 modules, and loads in twice the time and twice the heap. Without a build (sources run by
 * the test runner) the package is loaded. Node's on-disk compile cache makes later loads cheaper; it is a no-op
 * where unsupported or disabled.
 */
export function preloadKubeClient(): Promise<typeof k8s> {
  if (!clientLibrary) {
    nodeModule.enableCompileCache?.();
    clientLibrary = (import(BUNDLED_CLIENT) as Promise<typeof k8s>).catch((err: unknown) => {
      const code = (err as { code?: unknown }).code;
      if (code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_PACKAGE_IMPORT_NOT_DEFINED') return import('@kubernetes/client-node');
      throw err;
    });
    // Preloading only: the failure is reported where the client is used.
    clientLibrary.catch(() => {});
  }
  return clientLibrary;
}

/** Loads kubeconfig (lazily importing the client) and selects `context` or the current one; undefined when there is none. */
export async function loadKube(context?: string): Promise<Kube | undefined> {
  const named = process.env.KUBECONFIG?.split(path.delimiter).filter(Boolean) ?? [];
  if (named.length > 0 && kubeconfigFiles().length === 0) {
    // Falling back to local Docker here would deploy somewhere the user did not mean.
    throw new UserError(`KUBECONFIG names ${named.join(', ')}, and no such file exists`, {
      hint: 'fix KUBECONFIG (or unset it to use ~/.kube/config); --target docker runs without a cluster',
    });
  }
  if (kubeconfigFiles().length === 0) {
    if (context) throw new UserError(`kube context "${context}" requested but no kubeconfig was found`, { hint: 'set KUBECONFIG or create ~/.kube/config' });
    return undefined;
  }
  const lib = await preloadKubeClient();
  const config = new lib.KubeConfig();
  config.loadFromDefault();
  poolConnections(config);
  if (context) {
    if (!config.getContextObject(context)) {
      throw new UserError(`kube context "${context}" does not exist`, {
        hint: `known contexts: ${config.getContexts().map((c) => c.name).join(', ') || '(none)'}`,
      });
    }
    config.setCurrentContext(context);
  }
  const current = config.getCurrentContext();
  if (!current || !config.getContextObject(current)) return undefined;
  return {
    lib,
    config,
    context: current,
    objects: lib.KubernetesObjectApi.makeApiClient(config),
    core: config.makeApiClient(lib.CoreV1Api),
    apps: config.makeApiClient(lib.AppsV1Api),
  };
}

/**
 * The client builds a new connection pool (an undici Agent, so a new TLS handshake and certificate files read again)
 * for every request; one per cluster and user serves every request of a run. Its per-request hook is private API:
 * when a version of the client no longer has it, requests simply stay unpooled.
 */
function poolConnections(config: k8s.KubeConfig): void {
  const hook = config as unknown as { createDispatcher?: (cluster: { name?: string } | null, options: unknown) => unknown };
  const create = hook.createDispatcher?.bind(config);
  if (!create) return;
  const pools = new Map<string, unknown>();
  hook.createDispatcher = (cluster, options) => {
    const key = JSON.stringify([cluster?.name ?? '', config.getCurrentUser()?.name ?? '']);
    if (!pools.has(key)) pools.set(key, create(cluster, options));
    return pools.get(key);
  };
}

export function statusCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown };
  return typeof e?.code === 'number' ? e.code : typeof e?.statusCode === 'number' ? e.statusCode : undefined;
}

export function isNotFound(err: unknown): boolean {
  return statusCode(err) === 404;
}

/** Wraps a failed API call: forbidden becomes a user error with a hint, the rest names the call and the server's message. */
export function kubeCallFailed(call: string, err: unknown): Error {
  const code = statusCode(err);
  const body = (err as { body?: unknown }).body;
  let message = (err as Error).message ?? String(err);
  if (typeof body === 'string') {
    try {
      message = (JSON.parse(body) as { message?: string }).message ?? message;
    } catch {
      // Not a Status object: the body itself is the best message there is.
      message = body || message;
    }
  } else if (body && typeof body === 'object' && 'message' in body) {
    message = String((body as { message: unknown }).message);
  }
  if (code === 403) return new UserError(`${call} was forbidden: ${message}`, { hint: 'ask for access to this namespace, or choose another with --namespace' });
  // fetch says only "fetch failed"; why (refused, unknown host, TLS) is in its chain of causes.
  const why = causeChain(err);
  if (why.length > 0) message = `${message} (${why.join(': ')})`;
  if (code === undefined && /ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT|EHOSTUNREACH|ECONNRESET|socket hang up/.test(message)) {
    return new UserError(`cannot reach the Kubernetes API for ${call}: ${message}`, { hint: 'is the cluster running? check `kubectl cluster-info`' });
  }
  return new ExternalError(`${call} failed${code ? ` (HTTP ${code})` : ''}: ${message}`, { cause: err });
}

/** The messages of an error's causes, outermost first, without repeats. */
function causeChain(err: unknown): string[] {
  const out: string[] = [];
  const seen = new Set<unknown>();
  for (let c = (err as { cause?: unknown })?.cause; c && !seen.has(c); c = (c as { cause?: unknown }).cause) {
    seen.add(c);
    const m = c instanceof Error ? c.message : String(c);
    if (m && !out.includes(m)) out.push(m);
  }
  return out;
}
