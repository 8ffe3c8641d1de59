import { existsSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { UserError } from '../../core/errors.js';
import { workDir } from '../main.js';

interface DemoFlags {
  once?: boolean;
  json?: boolean;
}

/**
 * `devloop demo [dir]`: from nothing to a service running on local Docker with file sync, in one command — a new
 * git repository in `dir` (default ./devloop-demo, which must not exist or be empty), the node-http template as
 * service `hello`, then `devloop up --target docker` in it. Nothing outside `dir` is written.
 */
export function register(program: Command): void {
  program
    .command('demo')
    .description('create a demo repository with one service and run it on local Docker with live sync')
    .argument('[dir]', 'where to create it (must not exist, or be empty)', 'devloop-demo')
    .option('--once', 'deploy once and exit instead of watching')
    .option('--json', 'print one JSON object per event')
    .action(async (dirArg: string, flags: DemoFlags) => {
      const dir = path.resolve(workDir(program), dirArg);
      if (existsSync(dir) && readdirSync(dir).length > 0) {
        throw new UserError(`${dir} already exists and is not empty`, { hint: 'name a new directory: devloop demo <dir>' });
      }
      const { execa } = await import('execa');
      await mkdir(dir, { recursive: true });
      await execa('git', ['init', '-q', '-b', 'main'], { cwd: dir });
      const { scaffold } = await import('../../core/scaffold/scaffold.js');
      const result = await scaffold({ cwd: dir, template: 'node-http', name: 'hello' }, () => undefined);
      const port = result.entry.ports[0]?.split(':')[0] ?? '8080';
      process.stderr.write(
        [
          `demo repository: ${dir} (service hello from the node-http template)`,
          `try: curl -s localhost:${port}/v1/hello, then edit ${path.join(dir, result.path, 'src/server.ts')}: the change is synced, not rebuilt`,
          `remove it: devloop -C ${dir} down --target docker`,
          '',
        ].join('\n'),
      );
      // The same `up` a user would run in the demo directory, in this terminal.
      const bin = process.argv[1]!;
      const up = await execa(process.execPath, [bin, '-C', dir, 'up', '--target', 'docker', ...(flags.once ? ['--once'] : []), ...(flags.json ? ['--json'] : [])], {
        stdio: 'inherit',
        reject: false,
      });
      process.exitCode = up.exitCode ?? 1;
    });
}
