import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ServiceConfig } from '../config/types.js';
import { TempRepo } from '../workspace/temp-repo.js';
import { filesCoveredByRules, prepareOps } from './local.js';
import { compileRules } from './rules.js';

const service: ServiceConfig = {
  name: 'web',
  path: 'web',
  dockerfile: 'Dockerfile',
  dependsOn: [],
  image: 'x/web',
  buildArgs: {},
  ports: [],
  sync: [
    { from: 'public/**', to: '/app/public' },
    { from: 'src/*.js', to: '/app/src', then: ['true'] },
  ],
};
const rules = compileRules(service);

// Real files in a real git repository; the directory outside it stands for anything a link could reach.
const repo = TempRepo.create().write({
  'web/public/index.html': '<p>hi</p>',
  'web/public/sub/style.css': 'body{}',
  'web/src/a.js': 'a',
  'web/src/a.ts': 'not covered',
  'web/public/.env': 'SECRET=1',
  'web/public/debug.log': 'ignored by git',
  '.gitignore': '*.log\n',
});
chmodSync(path.join(repo.dir, 'web/src/a.js'), 0o755);
const outside = mkdtempSync(path.join(os.tmpdir(), 'devloop-outside-'));
writeFileSync(path.join(outside, 'secret.txt'), 'outside');
symlinkSync(path.join(outside, 'secret.txt'), path.join(repo.dir, 'web/public/leak'));
symlinkSync('../../../../../../../..' + outside, path.join(repo.dir, 'web/public/leak-relative'));
symlinkSync(outside, path.join(repo.dir, 'web/public/outdir'));
symlinkSync('sub/style.css', path.join(repo.dir, 'web/public/inside-link'));
mkdirSync(path.join(repo.dir, 'web/public/empty'));
repo.commit();

afterAll(() => {
  rmSync(repo.dir, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
});

describe('prepareOps', () => {
  it('reads covered files with their mode, links that stay inside, and deletions for what is gone', async () => {
    const r = await prepareOps(repo.dir, rules, ['web/public/index.html', 'web/src/a.js', 'web/public/inside-link', 'web/public/gone.txt', 'web/src/a.ts']);
    expect(r.refused).toEqual([]);
    expect(r.ops.map((o) => [o.kind, o.root, o.rel])).toEqual([
      ['delete', 0, 'gone.txt'],
      ['write', 1, 'a.js'],
      ['write', 0, 'index.html'],
      ['link', 0, 'inside-link'],
    ]);
    const js = r.ops.find((o) => o.rel === 'a.js');
    expect(js).toMatchObject({ kind: 'write', mode: 0o755 });
    expect(r.ops.find((o) => o.rel === 'inside-link')).toMatchObject({ target: 'sub/style.css' });
    expect([...r.rulesTouched].sort()).toEqual([0, 1]);
    expect([r.writes, r.deletions]).toEqual([3, 1]);
  });

  it('refuses links that point outside, and files below a link to a directory outside', async () => {
    const r = await prepareOps(repo.dir, rules, ['web/public/leak', 'web/public/leak-relative', 'web/public/outdir', 'web/public/outdir/secret.txt']);
    expect(r.ops).toEqual([]);
    expect(r.refused.map((x) => x.path).sort()).toEqual(['web/public/leak', 'web/public/leak-relative', 'web/public/outdir', 'web/public/outdir/secret.txt']);
    expect(r.refused.find((x) => x.path === 'web/public/outdir/secret.txt')!.reason).toMatch(/resolves outside/);
  });

  it('never sends .env, and skips directories (their files come on their own)', async () => {
    const r = await prepareOps(repo.dir, rules, ['web/public/.env', 'web/public/empty']);
    expect(r.ops).toEqual([]);
  });
});

describe('filesCoveredByRules', () => {
  it('lists what the rules cover, as git sees the tree (ignored files left out)', async () => {
    const files = await filesCoveredByRules(repo.dir, rules, (p) => !p.endsWith('.css'));
    expect(files.sort()).toEqual(['web/public/index.html', 'web/public/inside-link', 'web/public/leak', 'web/public/leak-relative', 'web/public/outdir', 'web/src/a.js']);
  });
});
