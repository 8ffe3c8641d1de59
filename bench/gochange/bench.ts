/**
 * Benchmark of one changed Go service, from a one-line edit to its new version ready in the cluster, built by
 * BuildKit (the go-grpc template's Go build cache mount) and by the classic builder (DOCKER_BUILDKIT=0).
 *
 *   npm run build && node bench/gochange/bench.ts [--runs 5] [--dir /tmp/devloop-bench-gochange] [--keep]
 *
 * Scaffolds a go-grpc service with the CLI into a new repository, deploys it with `devloop up --once` (remote target:
 * build, push to the registry, apply, rollout), then alternates the two builders over one-line changes to the
 * service's server package, each measured as the wall time of `devloop up --once`, with devloop's split (build, push,
 * apply → ready) from its events. Needs the e2e infrastructure (`npm run infra:up`).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { benchArgs, cli, commitAll, fmt, infraEnv, median, timed } from '../lib.ts';

const { opt, flag } = benchArgs(import.meta.filename);
const runs = Number(opt('--runs', '5'));
const dir = path.resolve(opt('--dir', '/tmp/devloop-bench-gochange'));
const keep = flag('--keep');
const infra = infraEnv();
const developer = 'bench';
const project = 'benchgo';
const service = 'orders';
const namespace = `${project}-${developer}`;
const baseEnv: NodeJS.ProcessEnv = { ...process.env, ...infra, DEVLOOP_DEVELOPER: developer, NO_COLOR: '1' };
delete baseEnv.DOCKER_BUILDKIT;
const builders = {
  buildkit: baseEnv,
  classic: { ...baseEnv, DOCKER_BUILDKIT: '0' },
};

const run = (cmd: string, argv: string[], env: NodeJS.ProcessEnv) => timed(cmd, argv, { cwd: dir, env });

// A namespace left terminating by an earlier run must be gone before this one starts.
spawnSync('kubectl', ['delete', 'namespace', namespace, '--ignore-not-found', '--wait=true', '--timeout=120s'], { env: baseEnv, stdio: 'ignore' });
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: dir });
writeFileSync(path.join(dir, 'devloop.yaml'), `version: 1\nname: ${project}\nservices: []\n`);
run('node', [cli, 'scaffold', 'go-grpc', service, '--module', `example.com/${project}/${service}`], baseEnv);
commitAll(dir);
console.log(`scaffolded go-grpc ${service} in ${dir}; first deploy (BuildKit, cold build cache for this module)…`);
console.log(`first up --once: ${fmt(run('node', [cli, 'up', '--once'], builders.buildkit).ms)}`);

// Unique per bench run: an image for this content must not exist yet, or nothing would be built.
const nonce = Date.now().toString(36);
const server = path.join(dir, 'services', service, 'internal/server/server.go');
type Split = { total: number[]; build: number[]; push: number[]; rollout: number[] };
const results: Record<keyof typeof builders, Split> = {
  buildkit: { total: [], build: [], push: [], rollout: [] },
  classic: { total: [], build: [], push: [], rollout: [] },
};
for (let i = 0; i < runs; i++) {
  // Alternating, so that both builders see the same machine load.
  for (const kind of ['classic', 'buildkit'] as const) {
    appendFileSync(server, `var _ = "bench change ${nonce}-${kind}-${i}"\n`);
    const r = run('node', [cli, 'up', '--once', '--json'], builders[kind]);
    const events = r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; at: number; durationMs?: number; message?: string });
    if (!events.some((e) => e.type === 'build.finished')) throw new Error(`the changed service was not rebuilt (${kind})`);
    const fallback = events.find((e) => e.type === 'warning' && e.message?.includes('classic builder'));
    if ((kind === 'classic') !== Boolean(fallback)) throw new Error(`expected the ${kind} builder, events say otherwise`);
    const at = (t: string) => events.find((e) => e.type === t)?.at ?? 0;
    const split = results[kind];
    split.total.push(r.ms);
    split.build.push(events.find((e) => e.type === 'build.finished')?.durationMs ?? 0);
    split.push.push(at('deliver.finished') - at('deliver.started'));
    split.rollout.push(at('rollout.ready') - at('deploy.applied'));
    console.log(`  ${kind.padEnd(8)} run ${i + 1}: ${fmt(r.ms)} (build ${fmt(split.build.at(-1)!)})`);
  }
}

console.log(`\none-line change to the go-grpc service → new version ready, median of ${runs}:`);
for (const kind of ['buildkit', 'classic'] as const) {
  const s = results[kind];
  console.log(
    `  ${kind.padEnd(8)} ${fmt(median(s.total))}  (build ${fmt(median(s.build))}, push ${fmt(median(s.push))}, apply→ready ${fmt(median(s.rollout))})`,
  );
}
console.log('target with BuildKit and the template\'s cache mount: <= 6 s');

if (!keep) {
  spawnSync('kubectl', ['delete', 'namespace', namespace, '--wait=true', '--timeout=120s'], { env: baseEnv, stdio: 'ignore' });
  rmSync(dir, { recursive: true, force: true });
}
