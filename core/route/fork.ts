import { createHash } from 'node:crypto';
import type { K8sObject } from '../deploy/render.js';

/** The pod label that marks a developer's fork. */
export const ROUTE_LABEL = 'devloop.dev/route';

export interface ForkedService {
  /** The baseline's Service (its name is the host requests are addressed to). */
  service: string;
  /** The developer's Service that selects only the fork's pods. */
  fork: string;
  ports: number[];
}

export interface ForkResult {
  objects: K8sObject[];
  services: ForkedService[];
  warnings: string[];
}

const WORKLOADS = new Set(['Deployment', 'StatefulSet', 'DaemonSet']);
const FORKED_CONFIG = new Set(['ConfigMap', 'Secret']);

/** `<name>-<developer>`, kept a valid DNS label (a hash keeps long names apart). */
export function forkName(name: string, developer: string, max = 63): string {
  const full = `${name}-${developer}`;
  if (full.length <= max) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, 6);
  return `${name.slice(0, max - developer.length - hash.length - 2).replace(/-+$/, '')}-${hash}-${developer}`;
}

interface PodSpecLike {
  containers?: ContainerLike[];
  initContainers?: ContainerLike[];
  volumes?: {
    configMap?: { name?: string };
    secret?: { secretName?: string };
    projected?: { sources?: { configMap?: { name?: string }; secret?: { name?: string } }[] };
  }[];
}

interface ContainerLike {
  env?: { valueFrom?: { configMapKeyRef?: { name?: string }; secretKeyRef?: { name?: string } } }[];
  envFrom?: { configMapRef?: { name?: string }; secretRef?: { name?: string } }[];
}

/**
 * A developer's fork of one service's objects, to live next to the baseline in its namespace (so short DNS names,
 * ConfigMaps and Secrets resolve as in production):
 * - workloads become `<name>-<developer>`; their pods carry `devloop.dev/route: <developer>`, and every label that
 *   a selector of these manifests uses gets the value `<value>-<developer>`, so that **no baseline Service ever
 *   selects a fork's pod** (a Service selector cannot exclude a label; changing the value is the only way);
 * - Services become `<name>-<developer>` with the same rewrite in their selector: they select the fork's pods only;
 * - ConfigMaps and Secrets of the service's own manifests become `<name>-<developer>`, and the fork's pods refer to
 *   those (env, envFrom, volumes); anything else they refer to (the baseline's, shared) is left as it is;
 * - other kinds (Ingress, HPA, PDB, ServiceAccounts, …) are not forked: the baseline's serve the fork too.
 * Pure: the input is not modified.
 */
export function forkObjects(input: ReadonlyArray<K8sObject>, developer: string): ForkResult {
  const warnings: string[] = [];
  const configNames = new Map<string, Set<string>>([
    ['ConfigMap', new Set(input.filter((o) => o.kind === 'ConfigMap').map((o) => o.metadata.name))],
    ['Secret', new Set(input.filter((o) => o.kind === 'Secret').map((o) => o.metadata.name))],
  ]);
  const selectorKeys = new Set<string>();
  for (const o of input) {
    const spec = o.spec as { selector?: Record<string, string> & { matchLabels?: Record<string, string> } } | undefined;
    if (o.kind === 'Service') for (const k of Object.keys(spec?.selector ?? {})) selectorKeys.add(k);
    if (WORKLOADS.has(o.kind)) for (const k of Object.keys(spec?.selector?.matchLabels ?? {})) selectorKeys.add(k);
  }
  const relabel = (labels: Record<string, string> | undefined): Record<string, string> => {
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(labels ?? {})) out[k] = selectorKeys.has(k) ? forkName(v, developer) : v;
    return { ...out, [ROUTE_LABEL]: developer };
  };
  const renameRef = (kind: 'ConfigMap' | 'Secret', name: string | undefined) => (name && configNames.get(kind)!.has(name) ? forkName(name, developer, 253) : name);

  const objects: K8sObject[] = [];
  const services: ForkedService[] = [];
  for (const original of input) {
    const o = structuredClone(original) as K8sObject & { spec?: Record<string, unknown> };
    if (WORKLOADS.has(o.kind)) {
      o.metadata.name = forkName(o.metadata.name, developer, 253);
      const spec = o.spec as { selector?: { matchLabels?: Record<string, string> }; template?: { metadata?: { labels?: Record<string, string> }; spec?: PodSpecLike } };
      if (spec.selector) spec.selector.matchLabels = relabel(spec.selector.matchLabels);
      spec.template ??= {};
      spec.template.metadata ??= {};
      spec.template.metadata.labels = relabel(spec.template.metadata.labels);
      const pod = spec.template.spec ?? {};
      for (const c of [...(pod.containers ?? []), ...(pod.initContainers ?? [])]) {
        for (const e of c.env ?? []) {
          if (e.valueFrom?.configMapKeyRef) e.valueFrom.configMapKeyRef.name = renameRef('ConfigMap', e.valueFrom.configMapKeyRef.name);
          if (e.valueFrom?.secretKeyRef) e.valueFrom.secretKeyRef.name = renameRef('Secret', e.valueFrom.secretKeyRef.name);
        }
        for (const e of c.envFrom ?? []) {
          if (e.configMapRef) e.configMapRef.name = renameRef('ConfigMap', e.configMapRef.name);
          if (e.secretRef) e.secretRef.name = renameRef('Secret', e.secretRef.name);
        }
      }
      for (const v of pod.volumes ?? []) {
        if (v.configMap) v.configMap.name = renameRef('ConfigMap', v.configMap.name);
        if (v.secret) v.secret.secretName = renameRef('Secret', v.secret.secretName);
        for (const s of v.projected?.sources ?? []) {
          if (s.configMap) s.configMap.name = renameRef('ConfigMap', s.configMap.name);
          if (s.secret) s.secret.name = renameRef('Secret', s.secret.name);
        }
      }
      objects.push(o);
    } else if (o.kind === 'Service') {
      const spec = o.spec as { selector?: Record<string, string>; clusterIP?: string; clusterIPs?: string[]; ports?: { port: number; nodePort?: number }[]; type?: string };
      if (!spec.selector) {
        warnings.push(`Service/${original.metadata.name} has no selector and is not forked`);
        continue;
      }
      const fork = forkName(o.metadata.name, developer);
      o.metadata.name = fork;
      spec.selector = relabel(spec.selector);
      // The cluster assigns the fork's own address and ports; a headless Service stays headless.
      if (spec.clusterIP !== 'None') delete spec.clusterIP;
      delete spec.clusterIPs;
      for (const p of spec.ports ?? []) delete p.nodePort;
      if (spec.type === 'NodePort' || spec.type === 'LoadBalancer') spec.type = 'ClusterIP';
      objects.push(o);
      services.push({ service: original.metadata.name, fork, ports: (spec.ports ?? []).map((p) => p.port) });
    } else if (FORKED_CONFIG.has(o.kind)) {
      o.metadata.name = forkName(o.metadata.name, developer, 253);
      objects.push(o);
    } else {
      warnings.push(`${original.kind}/${original.metadata.name} is not forked: the baseline's serves the fork too`);
    }
  }
  return { objects, services, warnings };
}
