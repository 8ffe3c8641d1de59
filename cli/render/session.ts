import type { Command } from 'commander';
import type { ProjectConfig } from '../../core/config/types.js';
import { EngineBus } from '../../core/engine/state.js';
import { resolveDeveloper, selectTarget, type Target, type TargetOptions } from '../../core/target/select.js';
import { UserError } from '../../core/errors.js';
import { kubeconfigFiles, preloadKubeClient } from '../../core/deploy/kube.js';
import { loadProjectWithVersions, probeProject } from '../../core/engine/versions.js';
import { BASELINE_DEVELOPER } from '../../core/deploy/labels.js';
import { plainRenderer, useColor } from './plain.js';
import { jsonLinesRenderer } from './json.js';

export interface CommonFlags {
  target?: string;
  context?: string;
  namespace?: string;
  json?: boolean;
  verbose?: boolean;
  baseline?: boolean;
}

/** Adds the flags every deploy-side command shares. */
export function targetFlags(cmd: Command): Command {
  return cmd
    .option('--target <target>', 'where to run: "kubernetes" (the current kube context) or "docker" (local containers)')
    .option('--context <name>', 'kube context to use instead of the current one')
    .option('-n, --namespace <name>', 'namespace to use instead of <project>-<developer> (or the shared baseline)')
    .option('--baseline', 'act on the shared cluster\'s baseline (every service, in shared.baseline) instead of your forks');
}

export interface Session {
  project: ProjectConfig;
  developer: string;
  target: Target;
  bus: EngineBus;
}

/** Loads the project, picks the target and wires a renderer (plain lines or JSON lines) to a new engine bus. */
export async function openSession(
  dir: string,
  flags: CommonFlags,
  withRenderer = true,
  opts: { needsServices?: boolean; needsRegistry?: boolean } = {},
): Promise<Session & { versions: Record<string, string> }> {
  if (flags.target !== undefined && flags.target !== 'docker' && flags.target !== 'kubernetes') {
    throw new UserError(`--target must be "kubernetes" or "docker", not "${flags.target}"`);
  }
  // git first (the tree cache's reads), then the Kubernetes client, which takes a while to load, alongside them.
  // The preload is a warm-up only: it never rejects (a failure shows where the client is used).
  const started = await probeProject(dir);
  if (flags.target !== 'docker' && kubeconfigFiles().length > 0) void preloadKubeClient();
  // From the tree cache when nothing changed (core/changes/tree-cache.ts): no YAML parsing, no hashing.
  // The developer's name (maybe a git call) is resolved while the versions are computed.
  let developerName: Promise<string> | undefined;
  const { project, versions } = await loadProjectWithVersions(dir, async (loaded) => {
    developerName = resolveDeveloper(loaded);
    developerName.catch(() => undefined); // awaited below, which reports the failure
    if (!opts.needsServices || loaded.services.length > 0) return;
    const empty = (await import('../../core/config/discover.js')).noServices(loaded);
    if (empty) throw new UserError(`nothing to run: ${empty.message}`, { hint: empty.hint });
  }, started);
  const targetOpts: TargetOptions = {
    ...(flags.target ? { target: flags.target as 'docker' | 'kubernetes' } : {}),
    ...(flags.context ? { context: flags.context } : {}),
    ...(flags.namespace ? { namespace: flags.namespace } : {}),
    ...(opts.needsRegistry === false ? { needsRegistry: false } : {}),
    ...(flags.baseline ? { baseline: true } : {}),
  };
  const resolved = await (developerName ?? resolveDeveloper(project));
  // The baseline has one owner whoever deploys it (CI or a person), so that any run of --baseline may update it.
  const developer = flags.baseline ? BASELINE_DEVELOPER : resolved;
  const target = await selectTarget(project, developer, targetOpts);
  const bus = new EngineBus();
  if (withRenderer) {
    // A reader that goes away (`devloop up --json | head`) ends the output, not the run: the pass still finishes.
    let readerGone = false;
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE') throw err;
      readerGone = true;
    });
    const write = (s: string) => {
      if (!readerGone) process.stdout.write(s);
    };
    bus.subscribe(flags.json ? jsonLinesRenderer(write) : plainRenderer({ color: useColor(process.stdout), verbose: !!flags.verbose, write }));
  }
  return { project, developer, target, bus, versions };
}
