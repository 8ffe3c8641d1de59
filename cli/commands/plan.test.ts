import { describe, expect, it } from 'vitest';
import { runCli } from '../run-in-process.js';
import { SHOP_FILES, tempRepos } from './testing.js';

const newRepo = tempRepos();

const devloop = runCli;
const shop = () => newRepo(SHOP_FILES);

describe('devloop plan', () => {
  it('--json prints exactly one JSON document', async () => {
    const repo = shop();
    repo.write({ 'devloop.yaml': 'version: 1\nname: shop\nservices:\n  - { name: orders, path: services/orders }\n  - { name: payments, path: services/payments, dependsOn: [orders] }\n' });
    repo.commit('init');
    repo.git('checkout', '-q', '-b', 'feature');
    repo.write({ 'libs/common/x.go': 'package common // 2\n' });

    const r = await devloop(`--cwd=${repo.dir}`, 'plan', '--json');
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual(['base', 'services', 'warnings']);
    expect(doc.warnings).toEqual([]);
    expect(doc.base).toBe(repo.git('rev-parse', 'main').trim());
    expect(doc.services).toEqual([
      {
        name: 'orders',
        rebuild: true,
        reasons: ['libs/common/x.go (via dependency libs/common)'],
        tag: expect.stringMatching(/^[0-9a-f]{16}$/),
        dependsOn: { declared: [], inferred: ['libs/common'] },
      },
      {
        name: 'payments',
        rebuild: true,
        reasons: ['libs/common/x.go (via dependency orders → libs/common)'],
        tag: expect.stringMatching(/^[0-9a-f]{16}$/),
        dependsOn: { declared: ['orders'], inferred: [] },
      },
    ]);
  });

  it('prints a compact table', async () => {
    const repo = shop();
    repo.commit('init');
    repo.write({ 'services/payments/main.go': 'package main\n' });
    const r = await devloop(`--cwd=${repo.dir}`, 'plan');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^base: merge-base of HEAD and main \([0-9a-f]{12}\)$/);
    expect(lines[1]).toMatch(/^SERVICE\s+REBUILD\s+TAG\s+DEPENDS ON\s+WHY$/);
    expect(lines[2]).toMatch(/^orders\s+no\s+[0-9a-f]{16}\s+inferred: libs\/common\s+-$/);
    expect(lines[3]).toMatch(/^payments\s+yes\s+[0-9a-f]{16}\s+-\s+services\/payments\/main\.go \(untracked; services\/payments\/Dockerfile:2 COPY \. \/\)$/);
    expect(lines[4]).toBe('1 of 2 services to rebuild');
  });

  it('names the instruction that made a changed file an input, and warns on stderr about a source it cannot resolve', async () => {
    const repo = newRepo({
      'devloop.yaml': 'version: 1\nname: mono\nservices:\n  - { name: api, path: ., dockerfile: services/api/Dockerfile }\n  - { name: web, path: ., dockerfile: services/web/Dockerfile }\n',
      'libs/greet/greet.go': 'package greet\n',
      'services/api/Dockerfile': 'FROM golang:1.22\nCOPY services/api /src\nCOPY libs/greet libs/greet\n',
      'services/web/Dockerfile': 'FROM golang:1.22\nCOPY services/web /src\nCOPY $EXTRA /extra\n',
    });
    repo.commit('init');
    repo.write({ 'libs/greet/greet.go': 'package greet // 2\n' });
    const r = await devloop(`--cwd=${repo.dir}`, 'plan');
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[2]).toMatch(/^api\s+yes\s+[0-9a-f]{16}\s+-\s+libs\/greet\/greet\.go \(services\/api\/Dockerfile:3 COPY libs\/greet libs\/greet\)$/);
    expect(lines[3]).toMatch(/^web\s+yes\s+[0-9a-f]{16}\s+-\s+libs\/greet\/greet\.go \(services\/web\/Dockerfile:3 COPY \$EXTRA \/extra\)$/);
    expect(r.stderr).toBe(
      'warning: web: services/web/Dockerfile:3: COPY $EXTRA /extra: cannot resolve $EXTRA; every file of the build context counts as read by this instruction\n',
    );
    const json = await devloop(`--cwd=${repo.dir}`, 'plan', '--json');
    expect((JSON.parse(json.stdout) as { warnings: string[] }).warnings).toHaveLength(1);
    expect(json.stderr).toBe('');
  });

  it('exits 2 with one line per problem on bad config, and prints nothing else', async () => {
    const repo = shop();
    repo.write({ 'devloop.yaml': 'version: 1\nname: shop\nservices:\n  - name: orders\n    path: services/orders\n  - name: payments\n    path: services/ordrs\n    dockerfle: Dockerfile\n' });
    const r = await devloop(`--cwd=${repo.dir}`, 'plan', '--json');
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe(`${repo.dir}/devloop.yaml:7:11 services[1].path: directory "services/ordrs" does not exist (did you mean "services/orders"?)`);
    expect(lines[1]).toBe(`${repo.dir}/devloop.yaml:8:5 services[1]: unknown key "dockerfle" (did you mean "dockerfile"?)`);
    expect(lines[2]).toMatch(/^hint: /);
    expect(lines).toHaveLength(3);
  });

  it('exits 2 on an unknown --base', async () => {
    const repo = shop();
    repo.commit('init');
    const r = await devloop(`--cwd=${repo.dir}`, 'plan', '--base', 'nope');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('--base nope: no such commit in this repository');
  });

  it('says on stderr that there are no services, and how to add one', async () => {
    const repo = newRepo({ 'README.md': 'nothing yet\n' });
    const r = await devloop(`--cwd=${repo.dir}`, 'plan');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('0 of 0 services to rebuild');
    expect(r.stderr).toContain(`no services: no devloop.yaml, and no Dockerfile under ${repo.dir}\nhint: \`devloop scaffold\` creates a service`);
  });
});
