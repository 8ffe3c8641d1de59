import type { Command } from 'commander';
import path from 'node:path';
import { findProjectRoot } from '../../core/config/root.js';
import type { ProjectConfig } from '../../core/config/types.js';
import type { Plan } from '../../core/changes/plan.js';
import type { TreeProbe } from '../../core/changes/tree-cache.js';
import { startTreeReads } from '../../core/changes/tree-reads.js';
import { gitTimings } from '../../core/workspace/git-exec.js';
import { cwdOption, workDir } from '../main.js';

type Found = Awaited<ReturnType<typeof findProjectRoot>>;

/** The project and the probe of its tree for a directory, started before the command line is parsed. */
interface Start {
  dir: string;
  found: Promise<Found>;
  probe: Promise<TreeProbe | undefined>;
}

let early: Start | undefined;

function start(dir: string): Start {
  const found = findProjectRoot(dir).catch((): Found => ({ kind: 'none' }));
  // With a devloop.yaml, an unchanged tree is answered from the tree cache (core/changes/tree-cache.ts). git starts
  // first; the modules that interpret its answers load while it runs.
  const probe = found.then(async (f) => {
    if (f.kind !== 'file') return undefined;
    const root = path.dirname(f.file);
    const reads = startTreeReads(root, { refs: true });
    const { TreeProbe } = await import('../../core/changes/tree-cache.js');
    return new TreeProbe(root, f.file, { refs: true, slot: 'plan', reads });
  });
  return { dir, found, probe };
}

/** git status is most of a plan's time in a large repository: it starts while the command line is parsed. */
export function prestart(argv: readonly string[]): void {
  early = start(path.resolve(cwdOption(argv) ?? process.cwd()));
}

export function register(program: Command): void {
  program
    .command('plan')
    .description('show which services would be rebuilt, why, and the image tag of each')
    .option('--base <ref>', 'compare with this commit (default: merge-base of HEAD and origin/HEAD, main or master)')
    .option('--json', 'print one JSON document on stdout')
    .action(async (opts: { base?: string; json?: boolean }) => {
      const dir = path.resolve(workDir(program));
      // git runs while devloop.yaml is parsed and checked; both take a while in a large monorepo.
      const started = early?.dir === dir ? early : start(dir);
      early = undefined;
      const [found, probe] = await Promise.all([started.found, started.probe]);
      const cached = await probe?.cachedPlan(opts.base);
      const { plan, project } = cached ?? (await planFully(dir, found, probe, opts.base));
      const shared = project.shared ? await sharedPlan(project.shared.baseline, project.name, plan) : undefined;
      if (opts.json) {
        process.stdout.write(`${JSON.stringify({ base: plan.base, services: plan.services, warnings: plan.warnings, ...(shared ? { shared: shared.json } : {}) }, null, 2)}\n`);
        if (plan.base === null && plan.baseNote) process.stderr.write(`note: ${plan.baseNote}\n`);
      } else {
        process.stdout.write(renderPlan(plan));
        if (shared) process.stdout.write(shared.lines.map((l) => `${l}\n`).join(''));
        for (const w of plan.warnings) process.stderr.write(`warning: ${w}\n`);
        const { noServices } = await import('../../core/config/discover.js');
        const empty = noServices(project);
        if (empty) process.stderr.write(`no services: ${empty.message}\nhint: ${empty.hint}\n`);
      }
      if (process.env.DEVLOOP_TIMINGS) process.stderr.write(`${JSON.stringify({ ...timingReport(), cached: cached !== null && cached !== undefined })}\n`);
    });
}

/** Loads devloop.yaml and computes the plan, reusing the probe's git reads; stores the answer in the tree cache. */
async function planFully(
  dir: string,
  found: Found,
  probe: TreeProbe | undefined,
  base: string | undefined,
): Promise<{ plan: Plan; project: ProjectConfig }> {
  const [{ loadProject }, { computePlanWithInputs, planReadFrom, startPlanRead }] = await Promise.all([
    import('../../core/config/load.js'),
    import('../../core/changes/plan.js'),
  ]);
  const root = found.kind === 'file' ? path.dirname(found.file) : found.kind === 'git' ? found.dir : null;
  const repoRead = probe ? planReadFrom(probe) : root === null ? undefined : startPlanRead(root);
  const started = Date.now();
  const project = await loadProject(dir);
  const { plan, inputs } = await computePlanWithInputs(project, { ...(base === undefined ? {} : { base }), ...(repoRead ? { repoRead } : {}) });
  await probe?.storePlan(base, project, plan, inputs, started);
  return { plan, project };
}

/**
 * In a shared cluster: what the baseline runs per service, and which services `up` would fork. Reading the cluster
 * may fail (no context, unreachable): then the plan says so and shows the rest.
 */
async function sharedPlan(namespace: string, project: string, plan: Plan): Promise<{ lines: string[]; json: unknown }> {
  const [{ loadKube }, { baselineVersions, sharedPlanLine }, { oneLine }] = await Promise.all([
    import('../../core/deploy/kube.js'),
    import('../../core/target/shared.js'),
    import('../../core/errors.js'),
  ]);
  try {
    const kube = await loadKube();
    if (!kube) return { lines: [`shared baseline ${namespace}: not read (no kube context)`], json: { baseline: namespace, error: 'no kube context' } };
    const versions = await baselineVersions(kube, namespace, project);
    return {
      lines: [`shared baseline ${namespace}:`, ...plan.services.map((s) => `  ${sharedPlanLine(s.name, s.tag, namespace, versions.get(s.name))}`)],
      json: { baseline: namespace, services: Object.fromEntries(plan.services.map((s) => [s.name, { baselineVersion: versions.get(s.name) ?? null, forked: versions.get(s.name) !== s.tag }])) },
    };
  } catch (err) {
    return { lines: [`shared baseline ${namespace}: not read (${oneLine(err)})`], json: { baseline: namespace, error: oneLine(err) } };
  }
}

/** The compact table people read: one row per service, the first reason and how many more. */
export function renderPlan(plan: Plan): string {
  const rows = plan.services.map((s) => {
    const why = s.reasons.length === 0 ? '-' : s.reasons.length === 1 ? s.reasons[0]! : `${s.reasons[0]} (+${s.reasons.length - 1} more)`;
    const deps = [
      s.dependsOn.declared.length > 0 ? s.dependsOn.declared.join(', ') : '',
      s.dependsOn.inferred.length > 0 ? `inferred: ${s.dependsOn.inferred.join(', ')}` : '',
    ]
      .filter(Boolean)
      .join('; ');
    return [s.name, s.rebuild ? 'yes' : 'no', s.tag, deps || '-', why];
  });
  const header = ['SERVICE', 'REBUILD', 'TAG', 'DEPENDS ON', 'WHY'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const count = plan.services.filter((s) => s.rebuild).length;
  const out = [
    plan.base === null ? `base: none (${plan.baseNote ?? 'everything counts as changed'})` : `base: ${plan.baseNote ?? plan.base.slice(0, 12)}`,
    line(header),
    ...rows.map(line),
    `${count} of ${plan.services.length} service${plan.services.length === 1 ? '' : 's'} to rebuild`,
  ];
  return `${out.join('\n')}\n`;
}

/** Where the time went: the whole process, and the wall time during which at least one git command ran. */
function timingReport(): { totalMs: number; gitMs: number; gitCalls: number; calls: { args: string; ms: number }[] } {
  const spans = gitTimings.map((t) => [t.startMs, t.endMs] as const).sort((a, b) => a[0] - b[0]);
  let gitMs = 0;
  let curStart = -1;
  let curEnd = -1;
  for (const [s, e] of spans) {
    if (s > curEnd) {
      if (curEnd > curStart) gitMs += curEnd - curStart;
      curStart = s;
      curEnd = e;
    } else {
      curEnd = Math.max(curEnd, e);
    }
  }
  if (curEnd > curStart) gitMs += curEnd - curStart;
  const round = (n: number) => Math.round(n * 10) / 10;
  return {
    totalMs: round(performance.now()),
    gitMs: round(gitMs),
    gitCalls: gitTimings.length,
    calls: gitTimings.map((t) => ({ args: t.args.slice(0, 3).join(' '), startMs: round(t.startMs), ms: round(t.endMs - t.startMs) })),
  };
}
