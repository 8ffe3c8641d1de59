import type { Command } from 'commander';
import { workDir } from '../main.js';
import { useColor } from '../render/plain.js';
import { UserError } from '../../core/errors.js';
import type { ScaffoldEvent, ScaffoldResult } from '../../core/scaffold/scaffold.js';
import type { Template } from '../../core/scaffold/templates.js';

interface ScaffoldFlags {
  path?: string;
  module?: string;
  list?: boolean;
  json?: boolean;
}

/** `--list`: one template per line with its description. */
export function formatTemplateList(templates: Template[]): string {
  const width = Math.max(...templates.map((t) => t.name.length));
  return templates.map((t) => `${t.name.padEnd(width)}  ${t.description}\n`).join('');
}

export function formatEvent(e: ScaffoldEvent): string {
  switch (e.kind) {
    case 'rendered':
      return `rendered ${e.files} files`;
    case 'command':
      return `running ${e.argv.join(' ')}`;
    case 'registered':
      return 'registered in devloop.yaml';
  }
}

export function formatResult(r: ScaffoldResult, color: boolean): string {
  const bold = (s: string) => (color ? `\u001b[1m${s}\u001b[0m` : s);
  const lines = [`${bold(`created ${r.path}/`)} from template ${r.template} (${r.files} files)`];
  if (r.module) lines.push(`Go module ${r.module} (from ${r.moduleSource})`);
  lines.push(`service "${r.name}" added to devloop.yaml: manifests ${r.entry.manifests ?? '-'}, ports ${r.entry.ports.join(', ') || '-'}` +
    (r.entry.sync.length > 0 ? `, sync ${r.entry.sync.map((s) => `${s.from} → ${s.to}`).join(', ')}` : ''));
  for (const n of r.notes) lines.push(`note: ${n}`);
  lines.push(`next: devloop up  (builds and deploys ${r.name})`);
  return `${lines.join('\n')}\n`;
}

export function register(program: Command): void {
  program
    .command('scaffold')
    .description('create a new service from a template and register it in devloop.yaml')
    .argument('[template]', 'template to use (see --list)')
    .argument('[name]', 'service name: lower-case letters, digits and "-"')
    .option('--path <dir>', 'directory of the new service (default: beside the existing services)')
    .option('--module <path>', "Go module path (Go templates; default: follows the repository's go.mod files)")
    .option('--list', 'list the templates with a one-line description')
    .option('--json', 'print the result as one JSON object')
    .action(async (template: string | undefined, name: string | undefined, flags: ScaffoldFlags) => {
      const { listTemplates } = await import('../../core/scaffold/templates.js');
      if (flags.list) {
        const templates = await listTemplates();
        process.stdout.write(flags.json ? `${JSON.stringify(templates.map(({ name: n, description }) => ({ name: n, description })))}\n` : formatTemplateList(templates));
        return;
      }
      const cwd = workDir(program);
      let request = { cwd, template: template ?? '', name: name ?? '', ...pick(flags) };
      if (template === undefined || name === undefined) {
        if (template !== undefined || !process.stdin.isTTY || !process.stdout.isTTY || flags.json) {
          const names = (await listTemplates()).map((t) => t.name).join(', ');
          throw new UserError(`devloop scaffold needs a template and a service name`, {
            hint: `devloop scaffold <template> <name> [--path DIR]; the templates are ${names} (run it without arguments in a terminal to be asked)`,
          });
        }
        // Only the interactive path pays for React and ink.
        const { askScaffold } = await import('../scaffold/ask.js');
        const answers = await askScaffold(cwd, flags);
        if (!answers) {
          process.stderr.write('scaffold cancelled; nothing was written\n');
          process.exitCode = 130;
          return;
        }
        request = { ...request, ...answers };
      }
      const { scaffold } = await import('../../core/scaffold/scaffold.js');
      const result = await scaffold(request, (e) => {
        if (!flags.json) process.stderr.write(`${formatEvent(e)}\n`);
      });
      process.stdout.write(flags.json ? `${JSON.stringify(result)}\n` : formatResult(result, useColor(process.stdout)));
    });
}

function pick(flags: ScaffoldFlags): { path?: string; module?: string } {
  const out: { path?: string; module?: string } = {};
  if (flags.path !== undefined) out.path = flags.path;
  if (flags.module !== undefined) out.module = flags.module;
  return out;
}
