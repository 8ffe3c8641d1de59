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

  it('writes a devloop.yaml without services when there is no Dockerfile, and says how to add one', async () => {
    const repo = newRepo({ 'README.md': 'nothing to build\n' });
    const r = await devloop(`--cwd=${repo.dir}`, 'init');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('with no services yet: no Dockerfile was found');
    expect(r.stdout).toContain('devloop scaffold <template> <name>');
    expect(readFileSync(repo.path('devloop.yaml'), 'utf8')).toMatch(/^version: 1\nname: \S+\nservices: \[\]\n$/m);
    // A project devloop itself accepts (up then says there is nothing to run, and how to add a service).
    const up = await devloop(`--cwd=${repo.dir}`, 'up', '--once', '--target', 'docker');
    expect(up.code).toBe(2);
    expect(up.stderr).toMatch(/nothing to run: .*devloop\.yaml declares no services/);
  });

  it('says so, and how to fix it, outside a git repository', async () => {
    const { mkdtempSync, rmSync } = await import('node:fs');
    const os = await import('node:os');
    const path = await import('node:path');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'devloop-nogit-'));
    try {
      const r = await devloop(`--cwd=${dir}`, 'init');
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`${dir} is not inside a git working tree`);
      expect(r.stderr).toContain('git init');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
