import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import { CONFIG_FILE, parseProjectConfig } from '../../core/config/load.js';
import { displayPath } from '../../core/config/paths.js';
import { UserError } from '../../core/errors.js';
import { workDir } from '../main.js';
import { exists } from '../../core/fs.js';
import { renderConfig } from '../../core/config/write.js';
import { planFromRepository, type InitPlan } from '../../core/init/plan.js';
import { findSkaffoldFile, labelFor, planFromSkaffold } from '../../core/init/skaffold.js';

export { renderConfig };

export function register(program: Command): void {
  program
    .command('init')
    .description(`write a ${CONFIG_FILE} for the services found here: from skaffold.yaml when there is one, else from the Dockerfiles and the manifests that deploy them`)
    .option('--stdout', `print the ${CONFIG_FILE} instead of writing it`)
    .option('--from <skaffold.yaml>', 'take services, manifests, sync rules and port-forwards from this Skaffold config')
    .action(async (opts: { stdout?: boolean; from?: string }) => {
      const dir = path.resolve(workDir(program));
      const target = path.join(dir, CONFIG_FILE);
      if (!opts.stdout && (await exists(target))) throw alreadyExists(target);
      const skaffold = opts.from !== undefined ? path.resolve(dir, opts.from) : await findSkaffoldFile(dir);
      let plan: InitPlan;
      let header: string | undefined;
      let intro = '';
      if (skaffold !== undefined) {
        const s = await planFromSkaffold(dir, skaffold);
        plan = s;
        const from = labelFor(dir, skaffold);
        header =
          ` ${CONFIG_FILE}: written by devloop from ${path.basename(skaffold)} (every config, no profiles, as \`skaffold run\` would).\n` +
          ' Dependencies in go.mod (replace => ../dir) and package.json (workspace packages) are found automatically;\n' +
          ' add others with dependsOn: [path or service name].';
        intro = `from ${from}: ${s.configs.length} config${s.configs.length === 1 ? '' : 's'} (${s.configs.join(', ')}), all used as \`skaffold run\` would without profiles\n`;
      } else {
        plan = await planFromRepository(dir);
      }
      const text = renderConfig(plan.name, plan.services, { ...(plan.manifests !== undefined ? { manifests: plan.manifests } : {}), ...(header ? { header } : {}) });
      // Validate what we are about to write: init must never leave a file that devloop itself rejects.
      await parseProjectConfig(text, target);
      if (opts.stdout) {
        process.stdout.write(text);
        process.stderr.write(intro + report(plan));
        return;
      }
      try {
        await writeFile(target, text, { flag: 'wx' });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw alreadyExists(target);
        throw err;
      }
      const { services, name } = plan;
      if (services.length === 0) {
        process.stdout.write(
          intro +
            `wrote ${displayPath(target)} for project "${name}" (named after the directory) with no services yet: ${skaffold ? 'no artifact could be carried over' : 'no Dockerfile was found'}\n` +
            report(plan) +
            'next: devloop scaffold --list, then devloop scaffold <template> <name> (e.g. devloop scaffold node-http hello)\n',
        );
        return;
      }
      process.stdout.write(
        intro +
          `wrote ${displayPath(target)} with ${services.length} service${services.length === 1 ? '' : 's'}:\n` +
          services
            .map((s) => `  ${s.name.padEnd(24)} ${s.path || '.'}${s.image ? `  image ${s.image}` : ''}${s.manifests ? `  (manifests: ${s.manifests})` : ''}\n`)
            .join('') +
          report(plan) +
          'next: devloop plan\n',
      );
    });
}

/** What init matched and what it could not, one line each. */
function report(plan: InitPlan): string {
  const lines: string[] = [];
  if (plan.matched.length) lines.push('matched:', ...plan.matched.map((l) => `  ${l}`));
  if (plan.shared.length) lines.push(`shared (deployed as they are, with the first service of ${plan.manifests || '.'}):`, ...plan.shared.map((l) => `  ${l}`));
  if (plan.unmatched.length) lines.push('not matched or not carried over:', ...plan.unmatched.map((l) => `  ${l}`));
  return lines.map((l) => `${l}\n`).join('');
}

function alreadyExists(target: string): UserError {
  return new UserError(`${displayPath(target)} already exists; devloop init never overwrites it`, {
    hint: 'edit it, or delete it and run devloop init again',
  });
}
