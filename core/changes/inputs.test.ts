import { afterEach, describe, expect, it } from 'vitest';
import { loadProject } from '../config/load.js';
import { TempRepo } from '../workspace/temp-repo.js';
import { computePlan, type Plan } from './plan.js';

// Services that build with the repository root as context read only what their Dockerfiles copy: real
// repositories, real files, the plan as `devloop plan` computes it.

const repos: TempRepo[] = [];
afterEach(() => {
  while (repos.length) repos.pop()!.remove();
});

const MONOREPO_YAML = `version: 1
name: mono
services:
  - { name: api, path: ., dockerfile: services/api/Dockerfile }
  - { name: web, path: ., dockerfile: services/web/Dockerfile }
  - { name: worker, path: ., dockerfile: services/worker/Dockerfile }
`;

/** A Go-style monorepo: three root-context services, two of them sharing libs/greet; committed on main, on a feature branch. */
function monorepo(extra: Record<string, string> = {}): TempRepo {
  const repo = TempRepo.create();
  repos.push(repo);
  repo.write({
    'devloop.yaml': MONOREPO_YAML,
    'go.mod': 'module mono\n',
    'libs/greet/greet.go': 'package greet\n',
    'libs/other/other.go': 'package other\n',
    'docs/notes.md': '# notes\n',
    'services/api/Dockerfile': 'FROM golang:1.22 AS build\nCOPY go.mod ./\nCOPY libs/greet libs/greet\nCOPY services/api services/api\n',
    'services/api/main.go': 'package main\n',
    'services/web/Dockerfile': 'FROM golang:1.22\nCOPY go.mod ./\nCOPY libs/greet libs/greet\nCOPY services/web services/web\n',
    'services/web/main.go': 'package main\n',
    'services/worker/Dockerfile': 'FROM golang:1.22\nCOPY go.mod ./\nCOPY libs/other libs/other\nCOPY services/worker services/worker\n',
    'services/worker/main.go': 'package main\n',
    ...extra,
  });
  repo.commit('monorepo');
  repo.git('checkout', '-q', '-b', 'feature');
  return repo;
}

async function plan(dir: string): Promise<Plan> {
  return computePlan(await loadProject(dir));
}

function byName(p: Plan): Record<string, { rebuild: boolean; reasons: string[]; tag: string }> {
  return Object.fromEntries(p.services.map((s) => [s.name, { rebuild: s.rebuild, reasons: s.reasons, tag: s.tag }]));
}

const rebuilt = (p: Plan) => p.services.filter((s) => s.rebuild).map((s) => s.name);

describe('inputs of root-context services', () => {
  it('change with the files each Dockerfile copies: its own, and the shared library for those that copy it', async () => {
    const repo = monorepo();
    const before = byName(await plan(repo.dir));
    expect(new Set(Object.values(before).map((s) => s.tag)).size).toBe(3);

    repo.write({ 'services/api/main.go': 'package main // 2\n' });
    let p = await plan(repo.dir);
    let s = byName(p);
    expect(rebuilt(p)).toEqual(['api']);
    expect(s.api!.reasons).toEqual(['services/api/main.go (services/api/Dockerfile:4 COPY services/api services/api)']);
    expect(s.api!.tag).not.toBe(before.api!.tag);
    expect([s.web!.tag, s.worker!.tag]).toEqual([before.web!.tag, before.worker!.tag]);

    repo.write({ 'libs/greet/greet.go': 'package greet // 2\n' });
    p = await plan(repo.dir);
    s = byName(p);
    expect(rebuilt(p)).toEqual(['api', 'web']);
    expect(s.api!.reasons).toContain('libs/greet/greet.go (services/api/Dockerfile:3 COPY libs/greet libs/greet)');
    expect(s.web!.reasons).toEqual(['libs/greet/greet.go (services/web/Dockerfile:3 COPY libs/greet libs/greet)']);
    expect(s.web!.tag).not.toBe(before.web!.tag);
    expect(s.worker!.tag).toBe(before.worker!.tag);

    // A file no Dockerfile copies changes nothing; one all of them copy changes everything.
    repo.write({ 'docs/notes.md': '# notes, edited\n', 'services/README.md': 'new\n' });
    expect(rebuilt(await plan(repo.dir))).toEqual(['api', 'web']);
    repo.write({ 'go.mod': 'module mono\n\ngo 1.22\n' });
    p = await plan(repo.dir);
    expect(rebuilt(p)).toEqual(['api', 'web', 'worker']);
    expect(byName(p).worker!.reasons).toEqual(['go.mod (services/worker/Dockerfile:2 COPY go.mod ./)']);
  });

  it('counts a Dockerfile change, and what a new instruction reads', async () => {
    const repo = monorepo();
    const before = byName(await plan(repo.dir));
    repo.write({ 'services/worker/Dockerfile': 'FROM golang:1.22\nCOPY go.mod ./\nCOPY libs/other libs/other\nCOPY services/worker services/worker\nCOPY docs /docs\n' });
    const p = await plan(repo.dir);
    expect(rebuilt(p)).toEqual(['worker']);
    expect(byName(p).worker!.reasons).toEqual(['services/worker/Dockerfile']);
    repo.commit('worker copies docs');
    repo.write({ 'docs/notes.md': '# notes, edited\n' });
    const after = byName(await plan(repo.dir));
    expect(after.worker!.reasons).toContain('docs/notes.md (services/worker/Dockerfile:5 COPY docs /docs)');
    expect(after.api!.tag).toBe(before.api!.tag);
  });

  it('follows --from through the stages the target builds, and leaves out stages it does not', async () => {
    const repo = monorepo({
      'devloop.yaml': `${MONOREPO_YAML}  - { name: cli, path: ., dockerfile: services/cli/Dockerfile, target: release }\n`,
      'services/cli/Dockerfile': [
        'FROM golang:1.22 AS build',
        'COPY services/cli /src',
        'FROM scratch AS test',
        'COPY testdata /testdata',
        'FROM scratch AS release',
        'COPY --from=build /src/cli /cli',
        'COPY --from=golang:1.22 /usr/local/go/VERSION /VERSION',
      ].join('\n'),
      'services/cli/main.go': 'package main\n',
      'testdata/case.txt': 'one\n',
    });
    const before = byName(await plan(repo.dir));
    repo.write({ 'testdata/case.txt': 'two\n' });
    let p = await plan(repo.dir);
    expect(rebuilt(p)).toEqual([]);
    expect(byName(p).cli!.tag).toBe(before.cli!.tag);
    repo.write({ 'services/cli/main.go': 'package main // 2\n' });
    p = await plan(repo.dir);
    expect(rebuilt(p)).toEqual(['cli']);
    expect(byName(p).cli!.reasons).toEqual(['services/cli/main.go (services/cli/Dockerfile:2 COPY services/cli /src)']);
  });

  it('reads wildcard sources segment by segment', async () => {
    const repo = monorepo({
      'services/api/Dockerfile': 'FROM golang:1.22\nCOPY go.* ./\nCOPY services/api/*.go services/api/\n',
      'services/api/api.md': '# api\n',
      'services/api/internal/x.go': 'package internal\n',
      'go.sum': '',
    });
    repo.write({ 'services/api/api.md': '# edited\n', 'services/api/internal/x.go': 'package internal // 2\n' });
    expect(rebuilt(await plan(repo.dir))).toEqual([]);
    repo.write({ 'services/api/new.go': 'package main\n', 'go.sum': 'x\n' });
    const s = byName(await plan(repo.dir));
    expect(s.api!.reasons).toEqual(['go.sum (services/api/Dockerfile:2 COPY go.* ./)', 'services/api/new.go (untracked; services/api/Dockerfile:3 COPY services/api/*.go services/api/)']);
    expect(s.worker!.reasons).toEqual([]);
  });

  it('applies .dockerignore as Docker does, `!` exceptions included', async () => {
    const repo = monorepo({
      '.dockerignore': '**/*.md\nservices/api/testdata\n!services/api/testdata/golden.txt\n',
      'services/api/README.md': '# api\n',
      'services/api/testdata/big.bin': 'x\n',
      'services/api/testdata/golden.txt': 'golden\n',
    });
    const before = byName(await plan(repo.dir));
    repo.write({ 'services/api/README.md': '# api, edited\n', 'services/api/testdata/big.bin': 'y\n' });
    let p = await plan(repo.dir);
    expect(rebuilt(p)).toEqual([]);
    expect(byName(p).api!.tag).toBe(before.api!.tag);
    repo.write({ 'services/api/testdata/golden.txt': 'golden 2\n' });
    p = await plan(repo.dir);
    expect(rebuilt(p)).toEqual(['api']);
    expect(byName(p).api!.reasons).toEqual(['services/api/testdata/golden.txt (services/api/Dockerfile:4 COPY services/api services/api)']);
  });

  it('expands build args from devloop.yaml and ARG defaults in sources', async () => {
    const repo = monorepo({
      'devloop.yaml': MONOREPO_YAML.replace(
        '  - { name: worker, path: ., dockerfile: services/worker/Dockerfile }',
        '  - { name: worker, path: ., dockerfile: services/shared.Dockerfile, buildArgs: { SERVICE: worker } }\n  - { name: jobs, path: ., dockerfile: services/shared.Dockerfile, buildArgs: { SERVICE: jobs } }',
      ),
      'services/shared.Dockerfile': 'ARG LIB=libs/other\nFROM golang:1.22\nARG LIB\nARG SERVICE\nCOPY ${LIB} /lib\nCOPY services/$SERVICE /src\n',
      'services/jobs/main.go': 'package main\n',
    });
    repo.write({ 'services/jobs/main.go': 'package main // 2\n' });
    let p = await plan(repo.dir);
    expect(rebuilt(p)).toEqual(['jobs']);
    expect(byName(p).jobs!.reasons).toEqual(['services/jobs/main.go (services/shared.Dockerfile:6 COPY services/$SERVICE /src)']);
    repo.write({ 'libs/other/other.go': 'package other // 2\n' });
    p = await plan(repo.dir);
    expect(rebuilt(p)).toEqual(['worker', 'jobs']);
    expect(byName(p).worker!.reasons).toEqual(['libs/other/other.go (services/shared.Dockerfile:5 COPY ${LIB} /lib)']);
    expect(p.warnings).toEqual([]);
  });

  it('reads the whole context for a source it cannot resolve, and warns naming the line', async () => {
    const repo = monorepo({ 'services/worker/Dockerfile': 'FROM golang:1.22\nCOPY services/worker /src\nCOPY $ASSETS /assets\n' });
    repo.write({ 'docs/notes.md': '# edited\n' });
    const p = await plan(repo.dir);
    expect(rebuilt(p)).toEqual(['worker']);
    expect(byName(p).worker!.reasons).toEqual(['docs/notes.md (services/worker/Dockerfile:3 COPY $ASSETS /assets)']);
    expect(p.warnings).toEqual([
      'worker: services/worker/Dockerfile:3: COPY $ASSETS /assets: cannot resolve $ASSETS; every file of the build context counts as read by this instruction',
    ]);
  });

  it('names each service’s own Dockerfile when several have the same text', async () => {
    const same = 'FROM golang:1.22\nCOPY $SRC /src\n';
    const repo = monorepo({ 'services/api/Dockerfile': same, 'services/web/Dockerfile': same });
    repo.write({ 'docs/notes.md': '# edited\n' });
    const p = await plan(repo.dir);
    expect(byName(p).web!.reasons).toEqual(['docs/notes.md (services/web/Dockerfile:2 COPY $SRC /src)']);
    expect(p.warnings.map((w) => w.slice(0, w.indexOf(' COPY')))).toEqual(['api: services/api/Dockerfile:2:', 'web: services/web/Dockerfile:2:']);
  });

  it('counts here-document bodies as part of the Dockerfile, and bind-mounted sources', async () => {
    const repo = monorepo({
      'services/worker/Dockerfile': 'FROM golang:1.22\nCOPY <<EOF /etc/worker.conf\nlevel=info\nEOF\nRUN --mount=type=bind,source=scripts,target=/scripts sh /scripts/build.sh\n',
      'scripts/build.sh': 'echo 1\n',
    });
    const before = byName(await plan(repo.dir));
    repo.write({ 'scripts/build.sh': 'echo 2\n' });
    let s = byName(await plan(repo.dir));
    expect(s.worker!.reasons).toEqual(['scripts/build.sh (services/worker/Dockerfile:5 RUN --mount=type=bind,source=scripts,target=/scripts sh /scripts/build.sh)']);
    repo.commit('scripts');
    const mid = byName(await plan(repo.dir)).worker!.tag;
    expect(mid).not.toBe(before.worker!.tag);
    repo.write({ 'services/worker/Dockerfile': 'FROM golang:1.22\nCOPY <<EOF /etc/worker.conf\nlevel=debug\nEOF\nRUN --mount=type=bind,source=scripts,target=/scripts sh /scripts/build.sh\n' });
    s = byName(await plan(repo.dir));
    expect(s.worker!.tag).not.toBe(mid);
    expect(s.api!.rebuild).toBe(false);
  });
});
