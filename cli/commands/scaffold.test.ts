import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { TempRepo } from '../../core/workspace/temp-repo.js';
import { runCli } from '../run-in-process.js';
import { tempRepos } from './testing.js';

const newRepo = tempRepos();
const devloop = runCli;

function shop(): TempRepo {
  const repo = newRepo({
    'devloop.yaml': 'version: 1\nname: shop\nservices:\n  - name: api # the API\n    path: services/api\n',
    'services/api/Dockerfile': 'FROM scratch\n',
  });
  repo.commit('init');
  return repo;
}

describe('devloop scaffold', () => {
  it('--list prints one line per template: name and description in columns', async () => {
    const r = await devloop('scaffold', '--list');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines.map((l) => l.split(/\s{2,}/)[0])).toEqual(['go-grpc', 'go-http', 'node-http']);
    expect(new Set(lines.map((l) => /\s{2,}\S/.exec(l)!.index + /\s{2,}\S/.exec(l)![0].length - 1)).size).toBe(1);
  });

  it('creates the service, reports what it did, and --json gives the same as data', async () => {
    const repo = shop();
    const r = await devloop(`--cwd=${repo.dir}`, 'scaffold', 'node-http', 'web');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('rendered 17 files\nregistered in devloop.yaml\n');
    expect(r.stdout).toBe(
      [
        'created services/web/ from template node-http (17 files)',
        'service "web" added to devloop.yaml: manifests services/web/deploy, ports 8080:8080, sync src/**/*.ts → /app/src',
        'next: devloop up  (builds and deploys web)',
        '',
      ].join('\n'),
    );
    expect(existsSync(path.join(repo.dir, 'services/web/src/main.ts'))).toBe(true);

    const j = await devloop(`--cwd=${repo.dir}`, 'scaffold', 'node-http', 'admin', '--path', 'tools/admin', '--json');
    expect(j.code, j.stderr).toBe(0);
    expect(j.stderr).toBe('');
    expect(JSON.parse(j.stdout)).toMatchObject({ name: 'admin', path: 'tools/admin', entry: { ports: ['8081:8080'], target: 'dev' } });
    expect(readFileSync(path.join(repo.dir, 'devloop.yaml'), 'utf8')).toMatch(/^version: 1\nname: shop\nservices:\n {2}- name: api # the API\n/);
  });

  it('exits 2 with the problem and a hint for bad input, writing nothing', async () => {
    const repo = shop();
    const r = await devloop(`--cwd=${repo.dir}`, 'scaffold', 'node-http', 'Web');
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      'service name: "Web" has upper-case letters; use lower case ("web")\n' +
        'hint: a service name is a DNS-1123 label: lower-case letters, digits and "-", starting with a letter\n',
    );
    expect(repo.git('status', '--porcelain', '--untracked-files=all')).toBe('');
  });

  it('without a name outside a terminal, says how to call it', async () => {
    const r = await devloop('scaffold', 'go-grpc');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^devloop scaffold needs a template and a service name\nhint: devloop scaffold <template> <name> \[--path DIR\]; the templates are go-grpc, go-http, node-http/);
  });
});
