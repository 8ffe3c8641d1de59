import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { exitCodeFor, formatError, UserError } from '../core/errors.js';
export { installCrashHandlers } from './crash.js';

/**
 * Commands are loaded lazily: `devloop plan` must not pay for the Kubernetes client or React at start-up.
 * Each command module exports `register(program)`; only the invoked one is imported.
 */
interface CommandModule {
  register(program: Command): void;
  /** Work that depends only on argv, started before commander has loaded (plan starts its git reads). */
  prestart?(argv: readonly string[]): void;
}

const commands: Record<string, { summary: string; load: () => Promise<CommandModule> }> = {
  init: { summary: 'write the devloop.yaml inferred from the Dockerfiles in the repo', load: () => import('./commands/init.js') },
  plan: { summary: 'show which services changed and their content tags', load: () => import('./commands/plan.js') },
  up: { summary: 'build, deliver and deploy what changed, then keep it in sync', load: () => import('./commands/up.js') },
  status: { summary: 'show what runs where and whether it is current', load: () => import('./commands/status.js') },
  open: { summary: 'a local port whose requests carry your routing key (to your fork, else the baseline)', load: () => import('./commands/open.js') },
  down: { summary: 'remove everything devloop deployed for you', load: () => import('./commands/down.js') },
  scaffold: { summary: 'create a new service from a template', load: () => import('./commands/scaffold.js') },
  swap: { summary: "route a Service's traffic to a process on this machine", load: () => import('./commands/swap.js') },
  demo: { summary: 'create a demo repository and run it on local Docker with live sync', load: () => import('./commands/demo.js') },
};

/** Global options that take a value: their value is not the command name. */
const GLOBAL_OPTIONS_WITH_VALUE = new Set(['-C', '--cwd']);

/** The sub-command named in argv, skipping global options and their values. */
export function commandName(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (GLOBAL_OPTIONS_WITH_VALUE.has(arg)) {
      i++;
      continue;
    }
    if (!arg.startsWith('-')) return arg;
  }
  return undefined;
}

/** The directory given with -C/--cwd in argv, if any (as commander reads it; see workDir). */
export function cwdOption(argv: readonly string[]): string | undefined {
  let dir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (GLOBAL_OPTIONS_WITH_VALUE.has(arg)) dir = argv[++i];
    else if (arg.startsWith('--cwd=')) dir = arg.slice('--cwd='.length);
    else if (!arg.startsWith('-')) break;
  }
  return dir;
}

/** devloop's own version: from the package.json above this module (cli/ in sources, dist/cli/ when built). */
export function devloopVersion(): string {
  for (const up of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(up, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (pkg.name === 'devloop-cli' && pkg.version) return pkg.version;
    } catch {
      // Not this one.
    }
  }
  return 'unknown';
}

export async function main(argv: string[]): Promise<number> {
  const name = commandName(argv);
  const entry = name ? commands[name] : undefined;
  // The command's module loads first and may start its work (plan starts git); commander loads meanwhile.
  const loading = entry?.load().then((m) => {
    m.prestart?.(argv);
    return m;
  });
  loading?.catch(() => undefined); // awaited below, where its failure is reported
  const { Command, CommanderError } = await (loading ?? Promise.resolve()).then(
    () => import('commander'),
    () => import('commander'),
  );
  const program = new Command('devloop')
    .description('The inner dev loop for microservice monorepos on Kubernetes')
    .version(devloopVersion(), '-V, --version', 'print devloop\'s version')
    .option('-C, --cwd <dir>', 'run as if started in <dir>')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  if (loading) {
    (await loading).register(program);
  } else {
    for (const [n, c] of Object.entries(commands)) program.command(n).description(c.summary);
  }

  try {
    await program.parseAsync(argv, { from: 'user' });
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    process.stderr.write(`${formatError(err)}\n`);
    return exitCodeFor(err);
  }
}

/** The directory a command works in: --cwd if given, else the process's. */
export function workDir(program: Command): string {
  const opts = program.optsWithGlobals() as { cwd?: string };
  return opts.cwd ?? process.cwd();
}

export { UserError };
