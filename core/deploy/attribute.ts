import { repositoryOf } from '../build/registry.js';
import type { K8sObject } from './render.js';

/** A service that takes its objects from the project's manifests tree: its name and image repository. */
export interface AttributedService {
  name: string;
  image: string;
}

/** Why an object went where it went, for `devloop init` and messages. */
export interface AttributionNote {
  object: string;
  /** The service, or null for the shared group. */
  service: string | null;
  reason: string;
}

export interface Attribution {
  /** Each service's objects, in the tree's order. Every service of the input has an entry. */
  byService: Map<string, K8sObject[]>;
  /** Objects of no single service (third-party workloads, Ingresses, objects two services use, …). */
  shared: K8sObject[];
  notes: AttributionNote[];
}

/** Kinds whose objects run pods, and so reference images. */
export const POD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job', 'CronJob', 'Pod']);
/** Kinds attributed to the workloads that use them. */
const REFERENCED_KINDS = new Set(['ConfigMap', 'Secret', 'ServiceAccount']);

interface PodTemplate {
  labels: Record<string, string>;
  spec: PodSpec;
}

interface ContainerLike {
  image?: string;
  env?: { valueFrom?: { configMapKeyRef?: { name?: string }; secretKeyRef?: { name?: string } } }[];
  envFrom?: { configMapRef?: { name?: string }; secretRef?: { name?: string } }[];
}

interface PodSpec {
  containers?: ContainerLike[];
  initContainers?: ContainerLike[];
  serviceAccountName?: string;
  imagePullSecrets?: { name?: string }[];
  volumes?: {
    configMap?: { name?: string };
    secret?: { secretName?: string };
    projected?: { sources?: { configMap?: { name?: string }; secret?: { name?: string } }[] };
  }[];
}

/** The pod template of a workload (or the pod itself), with its labels. */
export function podTemplateOf(o: K8sObject): PodTemplate | undefined {
  if (!POD_KINDS.has(o.kind)) return undefined;
  const spec = o.spec as Record<string, unknown> | undefined;
  if (!spec) return undefined;
  if (o.kind === 'Pod') return { labels: o.metadata.labels ?? {}, spec: spec as PodSpec };
  const template = (o.kind === 'CronJob' ? (spec.jobTemplate as { spec?: { template?: unknown } } | undefined)?.spec?.template : spec.template) as
    | { metadata?: { labels?: Record<string, string> }; spec?: PodSpec }
    | undefined;
  if (!template?.spec) return undefined;
  return { labels: template.metadata?.labels ?? {}, spec: template.spec };
}

/** Every image a pod spec runs, containers first. */
export function imagesOf(spec: PodSpec): string[] {
  return [...(spec.containers ?? []), ...(spec.initContainers ?? [])].map((c) => c.image).filter((i): i is string => typeof i === 'string' && i !== '');
}

/** The ConfigMaps, Secrets and ServiceAccount a pod spec refers to, as "Kind/name". */
function referencesOf(spec: PodSpec): Set<string> {
  const out = new Set<string>();
  const add = (kind: string, name: string | undefined) => {
    if (name) out.add(`${kind}/${name}`);
  };
  add('ServiceAccount', spec.serviceAccountName);
  for (const s of spec.imagePullSecrets ?? []) add('Secret', s.name);
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    for (const e of c.env ?? []) {
      add('ConfigMap', e.valueFrom?.configMapKeyRef?.name);
      add('Secret', e.valueFrom?.secretKeyRef?.name);
    }
    for (const e of c.envFrom ?? []) {
      add('ConfigMap', e.configMapRef?.name);
      add('Secret', e.secretRef?.name);
    }
  }
  for (const v of spec.volumes ?? []) {
    add('ConfigMap', v.configMap?.name);
    add('Secret', v.secret?.secretName);
    for (const p of v.projected?.sources ?? []) {
      add('ConfigMap', p.configMap?.name);
      add('Secret', p.secret?.name);
    }
  }
  return out;
}

const describe = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;

/**
 * Splits one rendered manifests tree among the services it deploys. Pure.
 * - A workload belongs to the service whose image its pod template runs (the first container that runs one); a
 *   workload that runs none of them (redis, busybox) is shared.
 * - A Service belongs to the service whose pods it selects; one selecting pods of several, or none, is shared.
 * - A ConfigMap, Secret or ServiceAccount belongs to the service whose workloads use it; one used by several (or by
 *   a shared workload), or by none, is shared.
 * - Everything else is shared. The shared group is deployed with one of the services (see `serviceObjects`).
 * Images match by repository (registry and tag aside), as the transform replaces them.
 */
export function attributeObjects(objects: ReadonlyArray<K8sObject>, services: ReadonlyArray<AttributedService>): Attribution {
  const byImage = new Map(services.map((s) => [repositoryOf(s.image), s.name]));
  const owner = new Map<K8sObject, string | null>();
  const notes: AttributionNote[] = [];
  const note = (o: K8sObject, service: string | null, reason: string) => {
    owner.set(o, service);
    notes.push({ object: describe(o), service, reason });
  };

  // Workloads first: everything else follows them.
  const workloads: { object: K8sObject; template: PodTemplate; service: string | null }[] = [];
  for (const o of objects) {
    const template = podTemplateOf(o);
    if (!template) continue;
    const images = imagesOf(template.spec);
    const match = images.find((i) => byImage.has(repositoryOf(i)));
    const service = match ? byImage.get(repositoryOf(match))! : null;
    note(o, service, match ? `runs image ${match}` : images.length ? `runs ${images.join(', ')}, which no service builds` : 'runs no image');
    workloads.push({ object: o, template, service });
  }

  const ownersOf = (test: (w: (typeof workloads)[number]) => boolean): Set<string | null> =>
    new Set(workloads.filter(test).map((w) => w.service));

  for (const o of objects) {
    if (owner.has(o)) continue;
    if (o.kind === 'Service') {
      const selector = (o.spec as { selector?: Record<string, string> } | undefined)?.selector;
      if (!selector || Object.keys(selector).length === 0) {
        note(o, null, 'selects no pods');
        continue;
      }
      const owners = ownersOf((w) => Object.entries(selector).every(([k, v]) => w.template.labels[k] === v));
      attributeTo(o, owners, 'selects the pods of', note);
      continue;
    }
    if (REFERENCED_KINDS.has(o.kind)) {
      const ref = describe(o);
      const owners = ownersOf((w) => referencesOf(w.template.spec).has(ref));
      attributeTo(o, owners, 'is used by', note);
      continue;
    }
    note(o, null, `goes with the shared objects (kind ${o.kind})`);
  }

  const byService = new Map<string, K8sObject[]>(services.map((s) => [s.name, []]));
  const shared: K8sObject[] = [];
  for (const o of objects) {
    const s = owner.get(o);
    if (s) byService.get(s)!.push(o);
    else shared.push(o);
  }
  return { byService, shared, notes };
}

function attributeTo(
  o: K8sObject,
  owners: Set<string | null>,
  verb: string,
  note: (o: K8sObject, service: string | null, reason: string) => void,
): void {
  const named = [...owners].filter((s): s is string => s !== null);
  if (owners.size === 1 && named.length === 1) {
    note(o, named[0]!, `${verb} ${named[0]}`);
    return;
  }
  if (owners.size === 0) note(o, null, `${verb} no workload of the tree`);
  else if (named.length === 0) note(o, null, `${verb} workloads that run no service's image`);
  else note(o, null, `${verb} ${named.join(', ')}${owners.has(null) ? ' and others' : ''}`);
}
