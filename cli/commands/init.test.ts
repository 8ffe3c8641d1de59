import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { TempRepo } from '../../core/workspace/temp-repo.js';
import { runCli } from '../run-in-process.js';

const repos: TempRepo[] = [];
afterEach(() => {
  while (repos.length) repos.pop()!.remove();
});

const devloop = runCli;

function shop(): TempRepo {
  const repo = TempRepo.create();
  repos.push(repo);
  repo.write({
    'services/orders/Dockerfile': 'FROM scratch\n',
    'services/orders/go.mod': 'module orders\nreplace common => ../../libs/common\n',
    'services/payments/Dockerfile': 'FROM scratch\n',
    'libs/common/go.mod': 'module common\n',
    'libs/common/x.go': 'package common\n',
  });
  return repo;
}

describe('devloop init', () => {
  it('writes the devloop.yaml it inferred, which plan then uses', async () => {
    const repo = shop();
    const r = await devloop(`--cwd=${repo.dir}`, 'init');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('with 2 services');
    const text = readFileSync(repo.path('devloop.yaml'), 'utf8');
    expect(text).toContain('  - name: orders\n    path: services/orders\n');
    expect(text).toContain('  - name: payments\n    path: services/payments\n');
    const plan = await devloop(`--cwd=${repo.dir}`, 'plan', '--json');
    expect(plan.code).toBe(0);
    expect((JSON.parse(plan.stdout) as { services: { name: string }[] }).services.map((s) => s.name)).toEqual(['orders', 'payments']);
  });

  it('refuses to overwrite an existing devloop.yaml', async () => {
    const repo = shop();
    repo.write({ 'devloop.yaml': '# mine\nversion: 1\nservices: []\n' });
    const r = await devloop(`--cwd=${repo.dir}`, 'init');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('devloop.yaml already exists; devloop init never overwrites it');
    expect(readFileSync(repo.path('devloop.yaml'), 'utf8')).toBe('# mine\nversion: 1\nservices: []\n');
  });

  it('exits 2 when there is no Dockerfile', async () => {
    const repo = TempRepo.create();
    repos.push(repo);
    repo.write({ 'README.md': 'nothing to build\n' });
    const r = await devloop(`--cwd=${repo.dir}`, 'init');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no Dockerfile found');
  });
});
