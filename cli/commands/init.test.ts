import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from '../run-in-process.js';
import { SHOP_FILES, tempRepos } from './testing.js';

const newRepo = tempRepos();

const devloop = runCli;
const shop = () => newRepo(SHOP_FILES);

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
    const repo = newRepo({ 'README.md': 'nothing to build\n' });
    const r = await devloop(`--cwd=${repo.dir}`, 'init');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('no Dockerfile found');
  });
});
