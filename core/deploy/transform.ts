import { createHash } from 'node:crypto';
import { repositoryOf } from '../build/registry.js';
import type { K8sObject } from './render.js';
import {
  MANIFEST_HASH_ANNOTATION,
  ownerLabels,
  VERSION_ANNOTATION,
} from './labels.js';

/** Kinds that live outside namespaces; every other kind gets the developer's namespace. */
const CLUSTER_SCOPED = new Set([
  'Namespace', 'Node', 'PersistentVolume', 'StorageClass', 'ClusterRole', 'ClusterRoleBinding',
  'CustomResourceDefinition', 'PriorityClass', 'IngressClass', 'RuntimeClass', 'APIService', 'CSIDriver',
  'CSINode', 'VolumeAttachment', 'MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration',
  'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding', 'CertificateSigningRequest',
]);

export function isNamespaced(kind: string): boolean {
  return !CLUSTER_SCOPED.has(kind);
}

export interface TransformInput {
  project: string;
  developer: string;
  service: string;
  namespace: string;
  version: string;
  /** Image repository (without registry/tag) → the reference to deploy, for every image the project builds. */
  images: Record<string, string>;
}

export interface TransformResult {
  objects: K8sObject[];
  /** Hash of the transformed objects: changes whenever what would be applied changes. */
  manifestHash: string;
  /** How many container image references were replaced. */
  imagesReplaced: number;
  warnings: string[];
}

interface PodSpecLike {
  containers?: { image?: string }[];
  initContainers?: { image?: string }[];
}

interface TemplateLike {
  metadata?: { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: PodSpecLike;
}

/** The pod template inside a workload object, if it has one. */
function podTemplate(o: K8sObject): TemplateLike | undefined {
  const spec = o.spec as Record<string, unknown> | undefined;
  if (!spec) return undefined;
  if (o.kind === 'CronJob') {
    const jobTemplate = spec.jobTemplate as { spec?: { template?: TemplateLike } } | undefined;
    return jobTemplate?.spec?.template;
  }
  return spec.template as TemplateLike | undefined;
}

const stableJson = (v: unknown): string =>
  JSON.stringify(v, (_k, val: unknown) =>
    val && typeof val === 'object' && !Array.isArray(val)
      ? Object.fromEntries(Object.entries(val as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : val,
  );

/**
 * devloop's in-code transform of rendered objects: set the namespace, point the project's images at the built
 * references, and mark every object (and pod template) with devloop's ownership labels and the content version.
 * Pure: the input objects are not modified.
 */
export function transformObjects(input: K8sObject[], t: TransformInput): TransformResult {
  const warnings: string[] = [];
  const labels = ownerLabels(t, t.service);
  let imagesReplaced = 0;
  const objects: K8sObject[] = [];
  for (const original of input) {
    if (original.kind === 'Namespace') {
      warnings.push(`Namespace ${original.metadata.name} in the manifests is not applied (devloop deploys into ${t.namespace})`);
      continue;
    }
    const o = structuredClone(original);
    if (isNamespaced(o.kind)) o.metadata.namespace = t.namespace;
    o.metadata.labels = { ...o.metadata.labels, ...labels };
    o.metadata.annotations = { ...o.metadata.annotations, [VERSION_ANNOTATION]: t.version };
    const template = podTemplate(o);
    const podSpec: PodSpecLike | undefined = template?.spec ?? (o.kind === 'Pod' ? (o.spec as PodSpecLike) : undefined);
    if (template) {
      template.metadata = template.metadata ?? {};
      template.metadata.labels = { ...template.metadata.labels, ...labels };
      template.metadata.annotations = { ...template.metadata.annotations, [VERSION_ANNOTATION]: t.version };
    }
    for (const c of [...(podSpec?.containers ?? []), ...(podSpec?.initContainers ?? [])]) {
      if (!c.image) continue;
      const ref = t.images[repositoryOf(c.image)];
      if (ref) {
        c.image = ref;
        imagesReplaced++;
      }
    }
    objects.push(o);
  }
  const manifestHash = createHash('sha256').update(stableJson(objects)).digest('hex').slice(0, 16);
  for (const o of objects) o.metadata.annotations = { ...o.metadata.annotations, [MANIFEST_HASH_ANNOTATION]: manifestHash };
  return { objects, manifestHash, imagesReplaced, warnings };
}
