import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { discoverServices, projectNameFor } from '../../core/config/discover.js';
import { CONFIG_FILE, parseProjectConfig } from '../../core/config/load.js';
import { displayPath } from '../../core/config/paths.js';
import { UserError } from '../../core/errors.js';
import { workDir } from '../main.js';
import { exists } from '../../core/fs.js';
import { renderConfig } from '../../core/config/write.js';

export { renderConfig };

export function register(program: Command): void {
  program
    .command('init')
    .description(`write a ${CONFIG_FILE} listing the services found here (every directory with a Dockerfile)`)
    .option('--stdout', `print the ${CONFIG_FILE} instead of writing it`)
    .action(async (opts: { stdout?: boolean }) => {
      const dir = path.resolve(workDir(program));
      const target = path.join(dir, CONFIG_FILE);
      if (!opts.stdout && (await exists(target))) throw alreadyExists(target);
      const name = projectNameFor(dir);
      const services = await discoverServices(dir, name);
      // Without Dockerfiles there is still a project to start: a devloop.yaml without services, and how to add one.
      const text = renderConfig(name, services);
      // Validate what we are about to write: init must never leave a file that devloop itself rejects.
      await parseProjectConfig(text, target);
      if (opts.stdout) {
        process.stdout.write(text);
        return;
      }
      try {
        await writeFile(target, text, { flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw alreadyExists(target);
        throw err;
      }
      if (services.length === 0) {
        process.stdout.write(
          `wrote ${displayPath(target)} for project "${name}" (named after the directory) with no services yet: no Dockerfile was found\n` +
            'next: devloop scaffold --list, then devloop scaffold <template> <name> (e.g. devloop scaffold node-http hello)\n',
        );
        return;
      }
      process.stdout.write(
        `wrote ${displayPath(target)} with ${services.length} service${services.length === 1 ? '' : 's'}:\n` +
          services.map((s) => `  ${s.name.padEnd(24)} ${s.path || '.'}${s.manifests ? `  (manifests: ${s.manifests})` : ''}\n`).join('') +
          'next: devloop plan\n',
      );
    });
}

function alreadyExists(target: string): UserError {
  return new UserError(`${displayPath(target)} already exists; devloop init never overwrites it`, {
    hint: 'edit it, or delete it and run devloop init again',
  });
}

