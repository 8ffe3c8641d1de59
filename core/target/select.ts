import os from 'node:os';
import type { ProjectConfig } from '../config/types.js';
import { UserError } from '../errors.js';
import { loadKube } from '../deploy/kube.js';
import { toLabelValue } from '../deploy/labels.js';
import type { Target } from './target.js';

export interface TargetOptions {
  /** "docker" forces the local Docker target; "kubernetes" requires a kube context. */
  target?: 'docker' | 'kubernetes';
  context?: string;
  namespace?: string;
  /** Whether images will be delivered (default true): reading what runs (status) or removing it (down) needs no registry. */
  needsRegistry?: boolean;
  /** Deploy the shared cluster's baseline (every service, into `shared.baseline`) rather than the developer's forks. */
  baseline?: boolean;
}

export type { Target } from './target.js';

/** Developer name: DEVLOOP_DEVELOPER, then devloop.yaml, then git's user.name, then the OS user. */
export async function resolveDeveloper(project: ProjectConfig): Promise<string> {
  const fromEnv = process.env.DEVLOOP_DEVELOPER?.trim();
  if (fromEnv) return toLabelValue(fromEnv);
  if (project.developer) return toLabelValue(project.developer);
  try {
    const { execa } = await import('execa');
    const { stdout } = await execa('git', ['config', 'user.name'], { cwd: project.root });
    if (stdout.trim()) return toLabelValue(stdout.trim());
  } catch {
    // No git user configured: fall through to the OS user.
  }
  return toLabelValue(os.userInfo().username);
}

/** `<project>-<developer>`, kept a valid namespace name. */
export function developerNamespace(project: string, developer: string): string {
  return toLabelValue(`${project}-${developer}`);
}

/**
 * Where `up` delivers to: the local Docker target when asked for or when there is no kube context; a kind
 * cluster when the context is `kind-<cluster>`; otherwise a remote cluster fed through the registry.
 */
export async function selectTarget(project: ProjectConfig, developer: string, opts: TargetOptions): Promise<Target> {
  // Each target's modules are loaded only when it is the one picked (start-up time of every command).
  if (opts.target === 'docker') return new (await import('./docker-target.js')).DockerTarget();
  const kube = await loadKube(opts.context);
  if (!kube) {
    if (opts.target === 'kubernetes') {
      throw new UserError('no Kubernetes context is configured', { hint: 'set KUBECONFIG or pass --context; or use --target docker' });
    }
    return new (await import('./docker-target.js')).DockerTarget();
  }
  const shared = project.shared;
  if (opts.baseline && !shared) {
    throw new UserError('--baseline deploys the baseline of a shared cluster, and devloop.yaml has no `shared:`', { hint: 'add `shared: { baseline: <namespace> }` to devloop.yaml' });
  }
  const namespace = opts.namespace ?? (shared ? shared.baseline : (project.namespace ?? developerNamespace(project.name, developer)));
  let kind: 'kind' | 'remote';
  let delivery: import('./kubernetes.js').ImageDelivery;
  if (kube.context.startsWith('kind-')) {
    kind = 'kind';
    delivery = new (await import('./delivery.js')).KindDelivery(kube.context.slice('kind-'.length));
  } else {
    const registry = (process.env.DEVLOOP_REGISTRY ?? project.registry ?? '').replace(/\/+$/, '');
    if (!registry && opts.needsRegistry !== false) {
      throw new UserError(`kube context "${kube.context}" is not a kind cluster, so images must go through a registry, and none is configured`, {
        hint: 'set `registry:` in devloop.yaml or DEVLOOP_REGISTRY (e.g. 127.0.0.1:5000), or use --target docker',
      });
    }
    kind = 'remote';
    delivery = new (await import('./delivery.js')).RegistryDelivery(registry);
  }
  if (shared && !opts.baseline) {
    const { SharedClusterTarget } = await import('./shared.js');
    return new SharedClusterTarget(kind, kube, namespace, delivery, shared.leaseSeconds);
  }
  const { KubernetesTarget } = await import('./kubernetes.js');
  return new KubernetesTarget(kind, kube, namespace, delivery, opts.baseline ? `${namespace} (shared baseline)` : namespace);
}
