import { Document } from 'yaml';
import { CONFIG_FILE } from './load.js';
import type { SyncRule } from './types.js';

/** A service entry as written; absent fields take devloop's defaults. */
export interface WrittenService {
  name: string;
  path: string;
  dockerfile?: string;
  image?: string;
  manifests?: string;
  buildArgs?: Record<string, string>;
  target?: string;
  ports?: string[];
  sync?: SyncRule[];
}

const DEFAULT_HEADER =
  ` ${CONFIG_FILE}: written by devloop from the Dockerfiles found here (add services with \`devloop scaffold\`).\n` +
  ' Dependencies in go.mod (replace => ../dir) and package.json (workspace packages) are found automatically;\n' +
  ' add others with dependsOn: [path or service name]. Other keys: dockerfile, image, buildArgs, target, ports, sync.';

/** The devloop.yaml `devloop init` (and `devloop scaffold` in a repository without one) writes. */
export function renderConfig(name: string, services: WrittenService[], opts: { manifests?: string; header?: string } = {}): string {
  const doc = new Document({
    version: 1,
    name,
    ...(opts.manifests !== undefined ? { manifests: opts.manifests === '' ? '.' : opts.manifests } : {}),
    services: services.map((s) => ({
      name: s.name,
      path: s.path === '' ? '.' : s.path,
      ...(s.dockerfile && s.dockerfile !== 'Dockerfile' ? { dockerfile: s.dockerfile } : {}),
      ...(s.image ? { image: s.image } : {}),
      ...(s.manifests ? { manifests: s.manifests } : {}),
      ...(s.buildArgs && Object.keys(s.buildArgs).length ? { buildArgs: s.buildArgs } : {}),
      ...(s.target ? { target: s.target } : {}),
      ...(s.ports?.length ? { ports: s.ports } : {}),
      ...(s.sync?.length ? { sync: s.sync.map((r) => (r.then ? { from: r.from, to: r.to, then: r.then } : { from: r.from, to: r.to })) } : {}),
    })),
  });
  doc.commentBefore = opts.header ?? DEFAULT_HEADER;
  return doc.toString({ lineWidth: 0 });
}
