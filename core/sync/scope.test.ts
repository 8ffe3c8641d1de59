import { rmSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readContextFilters } from '../changes/content.js';
import type { ProjectConfig, ServiceConfig } from '../config/types.js';
import { buildGraph } from '../workspace/graph.js';
import { TempRepo } from '../workspace/temp-repo.js';
import { watchScope } from './scope.js';

function service(name: string, p: string, extra: Partial<ServiceConfig> = {}): ServiceConfig {
  return { name, path: p, dockerfile: 'Dockerfile', dependsOn: [], image: `shop/${name}`, buildArgs: {}, ports: [], sync: [], ...extra };
}

// A real repository: the graph follows go.mod replaces and realpaths on disk.
describe('watchScope', () => {
  let repo: TempRepo;
  afterEach(() => rmSync(repo.dir, { recursive: true, force: true }));

  async function scope(services: ServiceConfig[]): Promise<string[]> {
    const project: ProjectConfig = { version: 1, name: 'shop', root: repo.dir, file: path.join(repo.dir, 'devloop.yaml'), services };
    const graph = await buildGraph(project);
    return watchScope(project, graph, await readContextFilters(repo.dir, graph));
  }

  it('is devloop.yaml and each service’s context, Dockerfile, ignore files, dependencies and manifests', async () => {
    repo = TempRepo.create().write({
      'devloop.yaml': 'version: 1\n',
      'services/api/Dockerfile': 'FROM scratch\nCOPY . /\n',
      'services/api/go.mod': 'module api\n\nreplace example.com/common => ../../libs/common\n',
      'libs/common/go.mod': 'module common\n\nreplace example.com/deep => ../deep\n',
      'libs/deep/go.mod': 'module deep\n',
      'libs/unused/go.mod': 'module unused\n',
      'docker/web.Dockerfile': 'FROM scratch\nCOPY . /\n',
      'services/web/index.js': '',
      'deploy/web/deployment.yaml': 'kind: Deployment\n',
      'shared/config.json': '{}',
      'corpus/big.txt': 'not an input of anything',
    });
    repo.commit();
    const got = await scope([
      service('api', 'services/api', { manifests: 'services/api/k8s' }),
      service('web', 'services/web', { dockerfile: '../../docker/web.Dockerfile', manifests: 'deploy/web', dependsOn: ['shared/config.json', 'api'] }),
    ]);
    expect(got).toEqual([
      'deploy/web',
      'devloop.yaml',
      'docker/web.Dockerfile',
      'docker/web.Dockerfile.dockerignore',
      'libs/common',
      'libs/deep',
      'services/api',
      'services/web',
      'shared/config.json',
    ]);
  });

  it('is the whole tree when a service builds from the repository root', async () => {
    repo = TempRepo.create().write({ 'devloop.yaml': 'version: 1\n', Dockerfile: 'FROM scratch\nCOPY . /\n', 'web/Dockerfile': 'FROM scratch\n' });
    repo.commit();
    expect(await scope([service('web', 'web'), service('all', '')])).toEqual(['']);
  });

  it('is only what the Dockerfiles read when services build from the repository root', async () => {
    repo = TempRepo.create().write({
      'devloop.yaml': 'version: 1\n',
      'services/api/Dockerfile': 'FROM scratch\nCOPY services/api /src\nCOPY libs/greet /libs/greet\n',
      'services/web/Dockerfile': 'FROM scratch AS build\nCOPY services/web/*.js /src/\nFROM scratch\nCOPY --from=build /src /src\nRUN --mount=type=bind,source=tools,target=/t true\n',
      'docs/notes.md': 'read by nobody',
    });
    repo.commit();
    expect(await scope([service('api', '', { dockerfile: 'services/api/Dockerfile' }), service('web', '', { dockerfile: 'services/web/Dockerfile' })])).toEqual([
      '.dockerignore',
      'devloop.yaml',
      'libs/greet',
      'services/api',
      'services/web',
      'tools',
    ]);
  });
});
