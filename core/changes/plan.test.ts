import { chmodSync, mkdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadProject } from '../config/load.js';
import { UserError } from '../errors.js';
import { TempRepo } from '../workspace/temp-repo.js';
import { computeContentVersions } from './content.js';
import { computePlan, type Plan } from './plan.js';

const repos: TempRepo[] = [];
afterEach(() => {
  while (repos.length) repos.pop()!.remove();
});

function track(repo: TempRepo): TempRepo {
  repos.push(repo);
  return repo;
}

const SHOP_YAML = `version: 1
name: shop
services:
  - name: api
    path: services/api
    dependsOn: [libs/common]
  - name: web
    path: services/web
    dependsOn: [api]
  - name: worker
    path: services/worker
`;

/** A shop monorepo committed on main, with a feature branch checked out. */
function shop(): TempRepo {
  const repo = track(TempRepo.create());
  repo.write({
    'devloop.yaml': SHOP_YAML,
    '.gitignore': '*.log\n',
    'libs/common/x.go': 'package common\n',
    'services/api/Dockerfile': 'FROM scratch\nCOPY . /\n',
    'services/api/main.go': 'package main\n',
    'services/api/README.md': '# api\n',
    'services/api/.dockerignore': '*.md\ntmp/\n!tmp/keep.txt\n',
    'services/api/tmp/keep.txt': 'keep\n',
    'services/api/tmp/scratch.txt': 'scratch\n',
    'services/web/Dockerfile': 'FROM scratch\nCOPY . /\n',
    'services/web/index.js': 'console.log(1)\n',
    'services/worker/Dockerfile': 'FROM scratch\nCOPY . /\n',
    'services/worker/nested/deep/dir/job.go': 'package job\n',
  });
  repo.commit('shop');
  repo.git('checkout', '-q', '-b', 'feature');
  return repo;
}

async function plan(dir: string, base?: string): Promise<Plan> {
  return computePlan(await loadProject(dir), base === undefined ? {} : { base });
}

function byName(p: Plan): Record<string, { rebuild: boolean; reasons: string[]; tag: string }> {
  return Object.fromEntries(p.services.map((s) => [s.name, { rebuild: s.rebuild, reasons: s.reasons, tag: s.tag }]));
}

describe('computePlan', () => {
  it('rebuilds nothing without changes, against the merge-base with main', async () => {
    const repo = shop();
    const p = await plan(repo.dir);
    expect(p.base).toBe(repo.git('rev-parse', 'main').trim());
    expect(p.baseNote).toContain('merge-base of HEAD and main');
    expect(p.services.map((s) => [s.name, s.rebuild, s.reasons])).toEqual([
      ['api', false, []],
      ['web', false, []],
      ['worker', false, []],
    ]);
    for (const s of p.services) expect(s.tag).toMatch(/^[0-9a-f]{16}$/);
    expect(p.services.find((s) => s.name === 'web')!.dependsOn).toEqual({ declared: ['api'], inferred: [] });
  });

  it('follows a change in a nested directory', async () => {
    const repo = shop();
    repo.write({ 'services/worker/nested/deep/dir/job.go': 'package job // v2\n' });
    const s = byName(await plan(repo.dir));
    expect(s.worker).toMatchObject({ rebuild: true, reasons: ['services/worker/nested/deep/dir/job.go (services/worker/Dockerfile:2 COPY . /)'] });
    expect(s.api!.rebuild).toBe(false);
  });

  it('follows a dependency chain lib → service → service', async () => {
    const repo = shop();
    const before = byName(await plan(repo.dir));
    repo.write({ 'libs/common/x.go': 'package common // v2\n' });
    repo.commit('lib change');
    const s = byName(await plan(repo.dir));
    expect(s.api!.reasons).toEqual(['libs/common/x.go (via dependency libs/common)']);
    expect(s.web!.reasons).toEqual(['libs/common/x.go (via dependency api → libs/common)']);
    expect(s.worker!.rebuild).toBe(false);
    expect(s.api!.tag).not.toBe(before.api!.tag);
    expect(s.web!.tag).not.toBe(before.web!.tag);
    expect(s.worker!.tag).toBe(before.worker!.tag);
  });

  it('counts both paths of a rename, staged or committed', async () => {
    const repo = shop();
    repo.git('mv', 'services/api/main.go', 'services/worker/main.go');
    let s = byName(await plan(repo.dir));
    expect(s.api!.reasons).toEqual(['services/api/main.go (renamed to services/worker/main.go; services/api/Dockerfile:2 COPY . /)']);
    expect(s.worker!.reasons).toEqual(['services/worker/main.go (renamed from services/api/main.go; services/worker/Dockerfile:2 COPY . /)']);
    expect(s.web!.reasons).toEqual(['services/api/main.go (renamed to services/worker/main.go; via dependency api)']);

    repo.commit('move');
    s = byName(await plan(repo.dir));
    expect(s.api!.reasons).toEqual(['services/api/main.go (renamed to services/worker/main.go; services/api/Dockerfile:2 COPY . /)']);
    expect(s.worker!.reasons).toEqual(['services/worker/main.go (renamed from services/api/main.go; services/worker/Dockerfile:2 COPY . /)']);
  });

  it('counts a move done without git as a deletion and a new file', async () => {
    const repo = shop();
    renameSync(repo.path('services/api/main.go'), repo.path('services/worker/main.go'));
    const s = byName(await plan(repo.dir));
    expect(s.api!.reasons).toEqual(['services/api/main.go (deleted; services/api/Dockerfile:2 COPY . /)']);
    expect(s.worker!.reasons).toEqual(['services/worker/main.go (untracked; services/worker/Dockerfile:2 COPY . /)']);
  });

  it('counts deletions, in the working tree and committed', async () => {
    const repo = shop();
    const before = byName(await plan(repo.dir));
    rmSync(repo.path('services/worker/nested/deep/dir/job.go'));
    let s = byName(await plan(repo.dir));
    expect(s.worker!.reasons).toEqual(['services/worker/nested/deep/dir/job.go (deleted; services/worker/Dockerfile:2 COPY . /)']);
    expect(s.worker!.tag).not.toBe(before.worker!.tag);
    repo.commit('delete');
    s = byName(await plan(repo.dir));
    expect(s.worker!.reasons).toEqual(['services/worker/nested/deep/dir/job.go (deleted; services/worker/Dockerfile:2 COPY . /)']);
  });

  it('handles paths with spaces and non-ASCII names', async () => {
    const repo = track(TempRepo.create());
    repo.write({
      'devloop.yaml': 'version: 1\nname: cafe\nservices:\n  - name: cafe\n    path: "services/café au lait"\n',
      'services/café au lait/Dockerfile': 'FROM scratch\nCOPY . /\n',
      'services/café au lait/données é.txt': 'un\n',
    });
    repo.commit('init');
    repo.git('checkout', '-q', '-b', 'feature');
    const before = byName(await plan(repo.dir));
    expect(before.cafe!.rebuild).toBe(false);

    repo.write({ 'services/café au lait/données é.txt': 'deux\n', 'services/café au lait/日本 語.md': 'new\n' });
    const after = byName(await plan(repo.dir));
    expect(after.cafe!.reasons).toEqual([
      'services/café au lait/données é.txt (services/café au lait/Dockerfile:2 COPY . /)',
      'services/café au lait/日本 語.md (untracked; services/café au lait/Dockerfile:2 COPY . /)',
    ]);
    expect(after.cafe!.tag).not.toBe(before.cafe!.tag);
  });

  it('ignores .gitignore and .dockerignore matches, but not "!" exceptions', async () => {
    const repo = shop();
    const before = byName(await plan(repo.dir));
    repo.write({
      'services/api/debug.log': 'gitignored\n',
      'services/api/README.md': '# api, edited: dockerignored\n',
      'services/api/tmp/scratch.txt': 'dockerignored\n',
      'services/api/tmp/new.txt': 'dockerignored and untracked\n',
    });
    const ignored = byName(await plan(repo.dir));
    expect(ignored.api).toEqual({ rebuild: false, reasons: [], tag: before.api!.tag });
    expect(ignored.web).toEqual({ rebuild: false, reasons: [], tag: before.web!.tag });

    repo.write({ 'services/api/tmp/keep.txt': 'kept by the ! exception\n' });
    const kept = byName(await plan(repo.dir));
    expect(kept.api!.reasons).toEqual(['services/api/tmp/keep.txt (services/api/Dockerfile:2 COPY . /)']);
    expect(kept.api!.tag).not.toBe(before.api!.tag);
  });

  it('works on a detached HEAD', async () => {
    const repo = shop();
    repo.write({ 'services/web/index.js': 'console.log(2)\n' });
    repo.commit('web');
    repo.git('checkout', '-q', '--detach');
    const p = await plan(repo.dir);
    expect(p.base).toBe(repo.git('rev-parse', 'main').trim());
    expect(byName(p).web!.reasons).toEqual(['services/web/index.js (services/web/Dockerfile:2 COPY . /)']);
  });

  it('uses the merge-base, not the tip of main', async () => {
    const repo = shop();
    repo.write({ 'services/api/main.go': 'package main // feature\n' });
    repo.commit('feature work');
    repo.git('checkout', '-q', 'main');
    repo.write({ 'services/worker/nested/deep/dir/job.go': 'package job // main moved on\n' });
    repo.commit('main work');
    repo.git('checkout', '-q', 'feature');
    const s = byName(await plan(repo.dir));
    expect(s.api!.rebuild).toBe(true);
    expect(s.worker!.rebuild).toBe(false);
  });

  it('falls back to master, and prefers origin/HEAD over main', async () => {
    const old = track(TempRepo.create({ branch: 'master' }));
    old.write({ 'devloop.yaml': 'version: 1\nservices:\n  - { name: a, path: a }\n', 'a/Dockerfile': 'FROM scratch\nCOPY . /\n' });
    const first = old.commit('one');
    old.git('checkout', '-q', '-b', 'topic');
    expect((await plan(old.dir)).base).toBe(first);

    const origin = track(TempRepo.create({ branch: 'trunk' }));
    origin.write({ 'devloop.yaml': 'version: 1\nservices:\n  - { name: a, path: a }\n', 'a/Dockerfile': 'FROM scratch\nCOPY . /\n' });
    origin.commit('one');
    origin.write({ 'a/file.txt': 'two\n' });
    const tip = origin.commit('two');
    const cloneDir = path.join(os.tmpdir(), `devloop-clone-${process.pid}-${Date.now()}`);
    origin.git('clone', '-q', origin.dir, cloneDir);
    const clone = track(TempRepo.at(cloneDir));
    clone.git('branch', 'main', 'HEAD~1'); // a stale local main must not win over origin/HEAD
    clone.git('checkout', '-q', '-b', 'feature');
    const p = await plan(clone.dir);
    expect(p.base).toBe(tip);
    expect(p.services[0]!.rebuild).toBe(false);
  });

  it('works in a shallow clone', async () => {
    const origin = shop();
    origin.git('checkout', '-q', 'main');
    origin.write({ 'services/web/index.js': 'console.log(3)\n' });
    origin.commit('second');
    const cloneDir = path.join(os.tmpdir(), `devloop-shallow-${process.pid}-${Date.now()}`);
    origin.git('clone', '-q', '--depth', '1', `file://${origin.dir}`, cloneDir);
    const clone = track(TempRepo.at(cloneDir));
    expect(clone.git('rev-parse', '--is-shallow-repository').trim()).toBe('true');

    let p = await plan(clone.dir);
    expect(p.base).toBe(clone.git('rev-parse', 'HEAD').trim());
    expect(p.services.every((s) => !s.rebuild)).toBe(true);
    clone.write({ 'services/worker/new.go': 'package worker\n' });
    p = await plan(clone.dir);
    expect(byName(p).worker!.reasons).toEqual(['services/worker/new.go (untracked; services/worker/Dockerfile:2 COPY . /)']);

    // A shallow single-branch clone of a feature branch has no default branch: everything counts, and it says so.
    const featureDir = `${cloneDir}-feature`;
    origin.git('clone', '-q', '--depth', '1', '--branch', 'feature', `file://${origin.dir}`, featureDir);
    const feature = track(TempRepo.at(featureDir));
    p = await plan(feature.dir);
    expect(p.base).toBeNull();
    expect(p.baseNote).toMatch(/no default branch/);
    expect(p.services.every((s) => s.rebuild && s.reasons[0] === p.baseNote)).toBe(true);
  });

  it('treats everything as changed in a repository without commits, and says so', async () => {
    const repo = track(TempRepo.create());
    repo.write({ 'devloop.yaml': SHOP_YAML.replace('    dependsOn: [libs/common]\n', ''), 'services/api/Dockerfile': 'FROM scratch\nCOPY . /\n', 'services/web/Dockerfile': 'FROM scratch\nCOPY . /\n', 'services/worker/Dockerfile': 'FROM scratch\nCOPY . /\n' });
    const p = await plan(repo.dir);
    expect(p.base).toBeNull();
    expect(p.baseNote).toBe('the repository has no commits yet: every file counts as changed');
    expect(p.services.map((s) => [s.name, s.rebuild, s.reasons])).toEqual([
      ['api', true, [p.baseNote]],
      ['web', true, [p.baseNote]],
      ['worker', true, [p.baseNote]],
    ]);
    // The tags of untracked files equal those of the same files once committed.
    const untracked = p.services.map((s) => s.tag);
    repo.commit('first');
    expect((await plan(repo.dir)).services.map((s) => s.tag)).toEqual(untracked);
  });

  it('follows a service directory that is a symlink', async () => {
    const repo = track(TempRepo.create());
    repo.write({
      'devloop.yaml': 'version: 1\nservices:\n  - { name: orders, path: services/orders }\n  - { name: real, path: impl/orders }\n',
      'impl/orders/Dockerfile': 'FROM scratch\nCOPY . /\n',
      'impl/orders/main.go': 'package main\n',
    });
    mkdirSync(repo.path('services'));
    symlinkSync('../impl/orders', repo.path('services/orders'), 'dir');
    repo.commit('init');
    repo.git('checkout', '-q', '-b', 'feature');
    const before = byName(await plan(repo.dir));
    expect(before.orders!.tag).toBe(before.real!.tag);
    repo.write({ 'impl/orders/main.go': 'package main // v2\n' });
    const after = byName(await plan(repo.dir));
    expect(after.orders!.reasons).toEqual(['impl/orders/main.go (impl/orders/Dockerfile:2 COPY . /)']);
    expect(after.orders!.tag).not.toBe(before.orders!.tag);
  });

  it('accepts an explicit base and rejects an unknown one', async () => {
    const repo = shop();
    repo.write({ 'services/web/index.js': 'console.log(4)\n' });
    const c1 = repo.commit('web 4');
    repo.write({ 'services/worker/nested/deep/dir/job.go': 'package job // 5\n' });
    repo.commit('worker 5');
    const s = byName(await plan(repo.dir, c1));
    expect(s.web!.rebuild).toBe(false);
    expect(s.worker!.rebuild).toBe(true);
    await expect(plan(repo.dir, 'no-such-branch')).rejects.toThrow(UserError);
    await expect(plan(repo.dir, 'no-such-branch')).rejects.toThrow('--base no-such-branch: no such commit in this repository');
  });

  it('counts a Dockerfile outside the context, and prefers <Dockerfile>.dockerignore', async () => {
    const repo = track(TempRepo.create());
    repo.write({
      'devloop.yaml': 'version: 1\nservices:\n  - { name: api, path: src/api, dockerfile: ../../docker/api.Dockerfile }\n',
      'docker/api.Dockerfile': 'FROM scratch\nCOPY . /\n',
      'docker/api.Dockerfile.dockerignore': 'secret.txt\n',
      'src/api/.dockerignore': '*.go\n',
      'src/api/main.go': 'package main\n',
      'src/api/secret.txt': 'x\n',
    });
    repo.commit('init');
    repo.git('checkout', '-q', '-b', 'feature');
    repo.write({ 'docker/api.Dockerfile': 'FROM scratch\nCOPY . /app\n', 'src/api/main.go': 'package main // 2\n', 'src/api/secret.txt': 'y\n' });
    const s = byName(await plan(repo.dir));
    expect(s.api!.reasons).toEqual(['docker/api.Dockerfile', 'src/api/main.go (docker/api.Dockerfile:2 COPY . /app)']);
  });

  it('rebuilds a service whose build settings changed in devloop.yaml', async () => {
    const repo = shop();
    repo.write({ 'devloop.yaml': `${SHOP_YAML}    buildArgs: { MODE: fast }\n  - name: extra\n    path: services/web\n    image: shop/extra\n` });
    const s = byName(await plan(repo.dir));
    expect(s.worker!.reasons).toEqual(['devloop.yaml (build settings changed)']);
    expect(s.extra!.reasons).toEqual(['devloop.yaml (new service)']);
    expect(s.api!.rebuild).toBe(false);
    expect(s.web!.rebuild).toBe(false);

    repo.write({ 'devloop.yaml': SHOP_YAML.replace('    dependsOn: [libs/common]\n', '    dependsOn: [libs/common]\n    target: dev\n') });
    const t = byName(await plan(repo.dir));
    expect(t.api!.reasons).toEqual(['devloop.yaml (build settings changed)']);
    expect(t.web!.reasons).toEqual(['devloop.yaml (build settings changed; via dependency api)']);
    expect(t.worker!.rebuild).toBe(false);
  });

  it('works when devloop.yaml lives below the git top level', async () => {
    const repo = track(TempRepo.create());
    repo.write({
      'other/file.txt': 'x\n',
      'shop/devloop.yaml': 'version: 1\nservices:\n  - { name: api, path: api }\n',
      'shop/api/Dockerfile': 'FROM scratch\nCOPY . /\n',
      'shop/api/main.go': 'package main\n',
    });
    repo.commit('init');
    repo.git('checkout', '-q', '-b', 'feature');
    repo.write({ 'shop/api/main.go': 'package main // 2\n', 'other/file.txt': 'y\n', 'shop/api/new.go': 'package main\n' });
    const s = byName(await plan(repo.path('shop')));
    expect(s.api!.reasons).toEqual(['api/main.go (api/Dockerfile:2 COPY . /)', 'api/new.go (untracked; api/Dockerfile:2 COPY . /)']);
  });
});

describe('content versions', () => {
  it('are the same in another checkout location and change with any input', async () => {
    const repo = shop();
    const project = await loadProject(repo.dir);
    const tags = await computeContentVersions(project);

    const cloneDir = path.join(os.tmpdir(), `devloop-elsewhere-${process.pid}-${Date.now()}`, 'deeper');
    repo.git('clone', '-q', repo.dir, cloneDir);
    track(TempRepo.at(path.dirname(cloneDir)));
    expect(await computeContentVersions(await loadProject(cloneDir))).toEqual(tags);

    // Build args and target are inputs.
    const withArgs = { ...project, services: project.services.map((s) => (s.name === 'worker' ? { ...s, buildArgs: { MODE: 'dev' } } : s)) };
    const argTags = await computeContentVersions(withArgs);
    expect(argTags.get('worker')).not.toBe(tags.get('worker'));
    expect(argTags.get('api')).toBe(tags.get('api'));
    const withTarget = { ...project, services: project.services.map((s) => (s.name === 'worker' ? { ...s, target: 'dev' } : s)) };
    expect((await computeContentVersions(withTarget)).get('worker')).not.toBe(tags.get('worker'));

    // The executable bit is part of a file's content for Docker.
    chmodSync(repo.path('services/worker/nested/deep/dir/job.go'), 0o755);
    expect((await computeContentVersions(project)).get('worker')).not.toBe(tags.get('worker'));
    chmodSync(repo.path('services/worker/nested/deep/dir/job.go'), 0o644);

    // Editing a file and restoring it gives the original tag back.
    repo.write({ 'services/web/index.js': 'console.log("temp")\n' });
    expect((await computeContentVersions(project)).get('web')).not.toBe(tags.get('web'));
    repo.write({ 'services/web/index.js': 'console.log(1)\n' });
    expect(await computeContentVersions(project)).toEqual(tags);
  });
});
