import type { Command } from 'commander';
import { workDir } from '../main.js';
import { openSession, targetFlags, type CommonFlags } from '../render/session.js';
import { useColor } from '../render/plain.js';
import type { StatusReport } from '../../core/engine/status.js';

/** A fixed-width table: service, state, ready pods, deployed version, where. */
export function formatStatus(report: StatusReport, color: boolean): string {
  const paint = (code: number, s: string) => (color ? `\u001b[${code}m${s}\u001b[0m` : s);
  const rows = report.services.map((s) => [
    s.name,
    !s.deployed ? 'not deployed' : s.current ? 'current' : 'outdated',
    s.deployed ? `${s.ready}/${s.desired}` : '-',
    s.deployedVersion?.slice(0, 12) ?? '-',
    s.image ?? '-',
  ]);
  const header = ['SERVICE', 'STATE', 'READY', 'VERSION', 'IMAGE'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd();
  const out = [`${report.where} (${report.target})`, line(header)];
  for (const r of rows) {
    const text = line(r);
    out.push(r[1] === 'current' && r[2]!.split('/')[0] === r[2]!.split('/')[1] ? text : paint(33, text));
  }
  for (const s of report.services) if (s.note) out.push(`${s.name}: ${s.note}`);
  for (const l of report.environment ?? []) out.push(l);
  return `${out.join('\n')}\n`;
}

export function register(program: Command): void {
  targetFlags(program.command('status'))
    .description('show what runs where for each service and whether it matches the working tree')
    .option('--json', 'print the status as one JSON object')
    .action(async (flags: CommonFlags) => {
      const session = await openSession(workDir(program), flags, false, { needsRegistry: false });
      const { collectStatus } = await import('../../core/engine/status.js');
      // Rendering the manifests (to compare them with what runs) may warn; that goes to stderr, the table to stdout.
      session.bus.subscribe((e) => {
        if (e.type === 'warning') process.stderr.write(`warning: ${e.service ? `${e.service}: ` : ''}${e.message}\n`);
      });
      const report = await collectStatus(session.project, session.developer, session.target, session.versions, session.bus);
      process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : formatStatus(report, useColor(process.stdout)));
    });
}
