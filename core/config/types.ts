/**
 * The resolved configuration every other stage consumes. Paths are repo-relative, POSIX-style, normalised
 * (no leading './', no trailing '/'); `root` is the absolute repo root.
 */
export interface SyncRule {
  /** Glob relative to the service path, e.g. "src/**\/*.js". */
  from: string;
  /** Absolute directory in the container. */
  to: string;
  /** Command run in the container after each synced batch. */
  then?: string[];
}

export interface ServiceConfig {
  /** Unique DNS-1123 label. */
  name: string;
  /** Build context, repo-relative. */
  path: string;
  /** Dockerfile relative to `path`. Default "Dockerfile". */
  dockerfile: string;
  /** As written in devloop.yaml: repo paths or names of other services. */
  dependsOn: string[];
  /** Image repository name without registry, e.g. "shop/orders". Default "<project>/<service>". */
  image: string;
  /**
   * Repo-relative directory (kustomization.yaml, Chart.yaml, or plain YAML files) or file; absent = not deployed to
   * Kubernetes. For a service without manifests of its own in a project with a top-level `manifests:` tree, the tree
   * (and `fromProjectManifests` is true): its objects are those of the tree attributed to it.
   */
  manifests?: string;
  /** `manifests` is the project's tree, shared with other services (see core/deploy/attribute.ts). */
  fromProjectManifests?: boolean;
  /** Declared build args; part of the content version. */
  buildArgs: Record<string, string>;
  /** Build target stage, if any; part of the content version. */
  target?: string;
  /** Port-forwards "local:remote". */
  ports: string[];
  sync: SyncRule[];
}

export interface ProjectConfig {
  version: 1;
  name: string;
  /** Absolute repo root (where devloop.yaml lives, or the git top level when discovered). */
  root: string;
  /** Absolute path of devloop.yaml, or null when services were discovered from Dockerfiles. */
  file: string | null;
  /** Registry prefix for the remote target, e.g. "127.0.0.1:5000". DEVLOOP_REGISTRY overrides. */
  registry?: string;
  /** Developer name for per-developer namespaces. DEVLOOP_DEVELOPER overrides; else git user. */
  developer?: string;
  /** Namespace override (default `<name>-<developer>`). */
  namespace?: string;
  /** Images devloop built to keep per service; older ones are pruned after a deploy. Default 3. */
  keepImages?: number;
  /** A shared cluster with a baseline namespace (see `shared:` in devloop.yaml). */
  shared?: SharedConfig;
  /** Repo-relative manifests tree that renders many services (top-level `manifests:`). */
  manifests?: string;
  services: ServiceConfig[];
}

export interface SharedConfig {
  /** The namespace that runs every service at main. */
  baseline: string;
  /** How long a developer's forks and routes outlive their last renewal, in seconds. */
  leaseSeconds: number;
}
