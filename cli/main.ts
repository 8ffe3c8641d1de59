import { Command, CommanderError } from 'commander';
import { exitCodeFor, formatError, UserError } from '../core/errors.js';

/**
 * Commands are loaded lazily: `devloop plan` must not pay for the Kubernetes client or React at start-up.
 * Each command module exports `register(program)`; only the invoked one is imported.
 */
const commands: Record<string, () => Promise<{ register(program: Command): void }>> = {
  plan: () => import('./commands/plan.js'),
  init: () => import('./commands/init.js'),
  scaffold: () => import('./commands/scaffold.js'),
  up: () => import('./commands/up.js'),
  status: () => import('./commands/status.js'),
  down: () => import('./commands/down.js'),
};

export async function main(argv: string[]): Promise<number> {
  const program = new Command('devloop')
    .description('The inner dev loop for microservice monorepos on Kubernetes')
    .option('-C, --cwd <dir>', 'run as if started in <dir>')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });

  const name = argv.find((a) => !a.startsWith('-'));
  const load = name ? commands[name] : undefined;
  if (load) {
    (await load()).register(program);
  } else {
    for (const n of Object.keys(commands)) program.command(n).description(`(run devloop ${n} --help)`);
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
