import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { Document } from 'yaml';
import { discoverServices, projectNameFor } from '../../core/config/discover.js';
import { CONFIG_FILE, parseProjectConfig } from '../../core/config/load.js';
import { displayPath } from '../../core/config/paths.js';
import { UserError } from '../../core/errors.js';
import { workDir } from '../main.js';
import { exists } from '../../core/fs.js';

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
      if (services.length === 0) {
        throw new UserError(`no Dockerfile found under ${dir}`, { hint: 'devloop treats every directory with a Dockerfile as a service; add one, or write devloop.yaml by hand' });
      }
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
      process.stdout.write(
        `wrote ${displayPath(target)} with ${services.length} service${services.length === 1 ? '' : 's'}:\n` +
          services.map((s) => `  ${s.name.padEnd(24)} ${s.path || '.'}${s.manifests ? `  (manifests: ${s.manifests})` : ''}\n`).join('') +
          'next: devloop plan\n',
      );
    });
}

export function renderConfig(name: string, services: { name: string; path: string; manifests?: string }[]): string {
  const doc = new Document({
    version: 1,
    name,
    services: services.map((s) => ({
      name: s.name,
      path: s.path === '' ? '.' : s.path,
      ...(s.manifests ? { manifests: s.manifests } : {}),
    })),
  });
  doc.commentBefore =
    ` ${CONFIG_FILE}: written by \`devloop init\` from the Dockerfiles found here.\n` +
    ' Dependencies in go.mod (replace => ../dir) and package.json (workspace packages) are found automatically;\n' +
    ' add others with dependsOn: [path or service name]. Other keys: dockerfile, image, buildArgs, target, ports, sync.';
  return doc.toString({ lineWidth: 0 });
}

function alreadyExists(target: string): UserError {
  return new UserError(`${displayPath(target)} already exists; devloop init never overwrites it`, {
    hint: 'edit it, or delete it and run devloop init again',
  });
}

