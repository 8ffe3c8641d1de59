import type { ProjectConfig, ServiceConfig } from '../config/types.js';
import { attributeObjects, type Attribution } from './attribute.js';
import { renderManifests, type RenderResult } from './render.js';

/**
 * The rendered objects of each service, whether its manifests are its own or the project's tree: its own are
 * rendered as they are (Helm release = service name); the project tree is rendered once per instance (Helm release =
 * project name) and split among the services that use it (`attributeObjects`), the shared group going with the
 * first of them in devloop.yaml order; objects of the tree that belong to a service with manifests of its own are
 * left out. A service without manifests has none. A render failure of the tree is the
 * same error object for every service that asks.
 */
export function serviceManifests(project: Pick<ProjectConfig, 'root' | 'name' | 'services'>, namespace: string): (service: ServiceConfig) => Promise<RenderResult> {
  let tree: Promise<{ source: RenderResult['source']; attribution: Attribution; sharedWith: string | undefined }> | undefined;
  const renderTree = (manifests: string) => {
    tree ??= (async () => {
      const rendered = await renderManifests(project.root, manifests, { release: project.name, namespace });
      // Every service takes part, so that what the tree has for a service with manifests of its own is left out
      // (that service deploys from its own) instead of landing in the shared group.
      const attribution = attributeObjects(rendered.objects, project.services);
      return { source: rendered.source, attribution, sharedWith: project.services.find((s) => s.fromProjectManifests)?.name };
    })();
    return tree;
  };
  return async (service) => {
    if (service.manifests === undefined) return { source: 'yaml', objects: [] };
    if (!service.fromProjectManifests) return renderManifests(project.root, service.manifests, { release: service.name, namespace });
    const { source, attribution, sharedWith } = await renderTree(service.manifests);
    const own = attribution.byService.get(service.name) ?? [];
    return { source, objects: service.name === sharedWith ? [...attribution.shared, ...own] : own };
  };
}
