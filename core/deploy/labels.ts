/** The labels and annotations by which devloop recognises what it owns. */
export const MANAGED_BY = 'app.kubernetes.io/managed-by';
export const MANAGED_BY_VALUE = 'devloop';
export const PROJECT_LABEL = 'devloop.dev/project';
export const DEVELOPER_LABEL = 'devloop.dev/developer';
export const SERVICE_LABEL = 'devloop.dev/service';
export const VERSION_ANNOTATION = 'devloop.dev/content-version';
export const MANIFEST_HASH_ANNOTATION = 'devloop.dev/manifest-hash';
export const INVENTORY_ANNOTATION = 'devloop.dev/objects';
export const FIELD_MANAGER = 'devloop';

/** Turns any string into a valid label value / DNS label fragment (lowercase, [a-z0-9-], max 63). */
export function toLabelValue(s: string): string {
  const v = s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/g, '');
  return v || 'unknown';
}

/** The developer name devloop gives the owner of a shared cluster's baseline (`devloop up --baseline`). */
export const BASELINE_DEVELOPER = 'baseline';

/** Who owns an object: the project and developer devloop acts for. */
export interface Owner {
  project: string;
  developer: string;
}

/** The one label set that marks what devloop owns (on objects, pod templates, containers, networks and images). */
export function ownerLabels(owner: Owner, service?: string): Record<string, string> {
  return {
    [MANAGED_BY]: MANAGED_BY_VALUE,
    [PROJECT_LABEL]: toLabelValue(owner.project),
    [DEVELOPER_LABEL]: toLabelValue(owner.developer),
    ...(service ? { [SERVICE_LABEL]: service } : {}),
  };
}

export function ownerSelector(project: string, developer: string, service?: string): string {
  return Object.entries(ownerLabels({ project, developer }, service))
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
