import { Document } from 'yaml';
import { CONFIG_FILE } from './load.js';

/** The devloop.yaml `devloop init` (and `devloop scaffold` in a repository without one) writes. */
export function renderConfig(name: string, services: { name: string; path: string; manifests?: string }[]): string {
  const doc = new Document({
    version: 1,
    name,
    services: services.map((s) => ({
      name: s.name,
      path: s.path === '' ? '.' : s.path,
      ...(s.manifests ? { manifests: s.manifests } : {}),
    })),
  });
  doc.commentBefore =
    ` ${CONFIG_FILE}: written by devloop from the Dockerfiles found here (add services with \`devloop scaffold\`).\n` +
    ' Dependencies in go.mod (replace => ../dir) and package.json (workspace packages) are found automatically;\n' +
    ' add others with dependsOn: [path or service name]. Other keys: dockerfile, image, buildArgs, target, ports, sync.';
  return doc.toString({ lineWidth: 0 });
}

