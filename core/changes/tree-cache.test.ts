import { execFileSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadProject } from '../config/load.js';
import { loadProjectWithVersions } from '../engine/versions.js';
import { TempRepo } from '../workspace/temp-repo.js';
import { computeContentVersions } from './content.js';
import { computePlan, computePlanWithInputs, planReadFrom, type Plan } from './plan.js';
import { TreeProbe } from './tree-cache.js';

const repos: TempRepo[] = [];
afterEach(() => {
  while (repos.length) repos.pop()!.remove();
});

const SHOP_YAML = `version: 1
name: shop
services:
  - name: api
    path: services/api
    dependsOn: [libs/common]
  - name: web
    path: services/web
    dependsOn: [api]
`;

/** A small monorepo committed on main, with a feature branch checked out. */
function shop(): TempRepo {
  const repo = TempRepo.create();
  repos.push(repo);
  repo.write({
    'devloop.yaml': SHOP_YAML,
    'libs/common/x.go': 'package common\n',
    'services/api/Dockerfile': 'FROM scratch\nCOPY . /\n',
    'services/api/main.go': 'package main\n',
    'services/api/README.md': '# api\n',
    'services/api/.dockerignore': '*.md\n',
    'services/web/Dockerfile': 'FROM scratch\nCOPY . /\n',
    'services/web/index.js': 'console.log(1)\n',
  });
  repo.commit('shop');
  repo.git('checkout', '-q', '-b', 'feature');
  return repo;
}

/** What `devloop plan` does: the cached plan when there is one, else computed and stored. */
async function planThroughCache(dir: string): Promise<{ plan: Plan; cached: boolean }> {
  const probe = new TreeProbe(dir, path.join(dir, 'devloop.yaml'), { refs: true, slot: 'plan' });
  const cached = await probe.cachedPlan(undefined);
  if (cached) return { plan: cached.plan, cached: true };
  const started = Date.now();
  const project = await loadProject(dir);
  const { plan, inputs } = await computePlanWithInputs(project, { repoRead: planReadFrom(probe) });
  await probe.storePlan(undefined, project, plan, inputs, started);
  return { plan, cached: false };
}

/** The plan through the cache must equal the plan computed from scratch; returns whether it came from the cache. */
async function expectSamePlan(dir: string): Promise<boolean> {
  const { plan, cached } = await planThroughCache(dir);
  expect(plan).toEqual(await computePlan(await loadProject(dir)));
  return cached;
}

/** A write that keeps the file's size and restores its modification time, as some tools do. */
function rewriteKeepingSizeAndMtime(file: string, from: string, to: string): void {
  expect(to.length).toBe(from.length);
  const before = statSync(file, { bigint: true });
  const reference = `${file}.times`;
  // touch -r copies the times to the nanosecond (utimes from JavaScript numbers would round them).
  execFileSync('touch', ['-r', file, reference]);
  writeFileSync(file, readFileSync(file, 'utf8').replace(from, to));
  execFileSync('touch', ['-r', reference, file]);
  rmSync(reference);
  const after = statSync(file, { bigint: true });
  expect(after.size).toBe(before.size);
  expect(after.mtimeNs).toBe(before.mtimeNs);
}

describe('tree cache: plan', () => {
  it('answers an unchanged tree from the cache, in the git directory', async () => {
    const repo = shop();
    expect(await expectSamePlan(repo.dir)).toBe(false);
    expect(await expectSamePlan(repo.dir)).toBe(true);
    expect(existsSync(repo.path('.git/devloop/plan-cache.json'))).toBe(true);
    // Nothing among the user's files.
    expect(repo.git('status', '--porcelain', '--ignored')).toBe('');
  });

  it('sees an edit that keeps the size and the modification time', async () => {
    const repo = shop();
    await expectSamePlan(repo.dir);
    expect(await expectSamePlan(repo.dir)).toBe(true);
    rewriteKeepingSizeAndMtime(repo.path('services/api/main.go'), 'main', 'mane');
    expect(await expectSamePlan(repo.dir)).toBe(false);
    const { plan } = await planThroughCache(repo.dir);
    expect(plan.services.find((s) => s.name === 'api')!.rebuild).toBe(true);
  });

  it('sees a second edit of a file that was already modified', async () => {
    const repo = shop();
    appendFileSync(repo.path('services/web/index.js'), '// one\n');
    await expectSamePlan(repo.dir);
    const first = await planThroughCache(repo.dir);
    expect(first.cached).toBe(true);
    rewriteKeepingSizeAndMtime(repo.path('services/web/index.js'), '// one', '// two');
    const second = await planThroughCache(repo.dir);
    expect(second.cached).toBe(false);
    expect(second.plan.services.find((s) => s.name === 'web')!.tag).not.toBe(first.plan.services.find((s) => s.name === 'web')!.tag);
    expect(await expectSamePlan(repo.dir)).toBe(true);
  });

  it('sees a new untracked file', async () => {
    const repo = shop();
    await expectSamePlan(repo.dir);
    repo.write({ 'libs/common/y.go': 'package common\n' });
    expect(await expectSamePlan(repo.dir)).toBe(false);
    const { plan } = await planThroughCache(repo.dir);
    expect(plan.services.find((s) => s.name === 'api')!.reasons).toEqual(['libs/common/y.go (untracked; via dependency libs/common)']);
  });

  it('sees a .dockerignore change', async () => {
    const repo = shop();
    await expectSamePlan(repo.dir);
    const before = (await planThroughCache(repo.dir)).plan;
    rewriteKeepingSizeAndMtime(repo.path('services/api/.dockerignore'), '*.md', '*.go');
    expect(await expectSamePlan(repo.dir)).toBe(false);
    const after = (await planThroughCache(repo.dir)).plan;
    expect(after.services.find((s) => s.name === 'api')!.tag).not.toBe(before.services.find((s) => s.name === 'api')!.tag);
  });

  it('sees a new ignore file that git itself ignores', async () => {
    const repo = shop();
    appendFileSync(repo.path('.git/info/exclude'), 'Dockerfile.dockerignore\n');
    await expectSamePlan(repo.dir);
    const before = await planThroughCache(repo.dir);
    expect(before.cached).toBe(true);
    // BuildKit prefers <Dockerfile>.dockerignore: it now leaves main.go out of api's context.
    repo.write({ 'services/api/Dockerfile.dockerignore': '*.go\n' });
    expect(repo.git('status', '--porcelain')).toBe('');
    const after = await planThroughCache(repo.dir);
    expect(after.cached).toBe(false);
    expect(after.plan.services.find((s) => s.name === 'api')!.tag).not.toBe(before.plan.services.find((s) => s.name === 'api')!.tag);
    // A file outside git's view that changed a moment ago is not trusted to the cache yet: computed again.
    await expectSamePlan(repo.dir);
  });

  it('sees a devloop.yaml change', async () => {
    const repo = shop();
    await expectSamePlan(repo.dir);
    writeFileSync(repo.path('devloop.yaml'), SHOP_YAML.replace('    path: services/web\n', '    path: services/web\n    buildArgs: {MODE: dev}\n'));
    expect(await expectSamePlan(repo.dir)).toBe(false);
    const { plan } = await planThroughCache(repo.dir);
    expect(plan.services.find((s) => s.name === 'web')!.reasons[0]).toBe('devloop.yaml (build settings changed)');
  });

  it('sees staging, committing and a moved default branch', async () => {
    const repo = shop();
    appendFileSync(repo.path('services/web/index.js'), '// staged\n');
    await expectSamePlan(repo.dir);
    repo.git('add', '-A');
    expect(await expectSamePlan(repo.dir)).toBe(false);
    repo.commit('web');
    expect(await expectSamePlan(repo.dir)).toBe(false);
    expect(await expectSamePlan(repo.dir)).toBe(true);
    // main moves on: the merge-base stays, but the plan is computed again.
    repo.git('checkout', '-q', 'main');
    repo.write({ 'services/api/main.go': 'package main // main\n' });
    repo.commit('api on main');
    repo.git('checkout', '-q', 'feature');
    expect(await expectSamePlan(repo.dir)).toBe(false);
  });

  it('is not used by another version of devloop', async () => {
    const repo = shop();
    await expectSamePlan(repo.dir);
    const file = repo.path('.git/devloop/plan-cache.json');
    const text = readFileSync(file, 'utf8');
    expect(text).toContain('"format":"devloop-tree-cache-v1"');
    writeFileSync(file, text.replace('"format":"devloop-tree-cache-v1"', '"format":"devloop-tree-cache-v0"'));
    expect(await expectSamePlan(repo.dir)).toBe(false);
  });
});

describe('tree cache: project and versions', () => {
  it('gives the versions computed from scratch, before and after changes', async () => {
    const repo = shop();
    const fresh = async () => Object.fromEntries(await computeContentVersions(await loadProject(repo.dir)));
    const first = await loadProjectWithVersions(repo.dir);
    expect(first.versions).toEqual(await fresh());
    expect(first.project).toEqual(await loadProject(repo.dir));
    // Stored now: the second answer comes from the cache and is the same.
    expect(existsSync(repo.path('.git/devloop/tree-cache.json'))).toBe(true);
    expect(await loadProjectWithVersions(repo.dir)).toEqual(first);

    rewriteKeepingSizeAndMtime(repo.path('libs/common/x.go'), 'common', 'kommon');
    const edited = await loadProjectWithVersions(repo.dir);
    expect(edited.versions).toEqual(await fresh());
    expect(edited.versions.api).not.toBe(first.versions.api);

    repo.write({ 'services/web/new.js': 'new\n' });
    expect((await loadProjectWithVersions(repo.dir)).versions).toEqual(await fresh());

    writeFileSync(repo.path('devloop.yaml'), SHOP_YAML.replace('name: shop', 'name: shop2'));
    const renamed = await loadProjectWithVersions(repo.dir);
    expect(renamed.project.name).toBe('shop2');
    expect(renamed.versions).toEqual(await fresh());
  });

  it('runs the caller\'s check on a cached project too', async () => {
    const repo = shop();
    await loadProjectWithVersions(repo.dir);
    const seen: string[] = [];
    await loadProjectWithVersions(repo.dir, (p) => {
      seen.push(p.name);
    });
    expect(seen).toEqual(['shop']);
  });
});
