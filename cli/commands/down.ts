import type { Command } from 'commander';
import { workDir } from '../main.js';
import { openSession, targetFlags, type CommonFlags } from '../render/session.js';

export function register(program: Command): void {
  targetFlags(program.command('down'))
    .description('remove everything devloop deployed for you (and your namespace, unless kept)')
    .option('--keep-namespace', 'leave the namespace in place')
    .option('--images', 'also remove every image devloop built for you in this project (locally and on kind nodes)')
    .option('--json', 'print one JSON object per event')
    .action(async (flags: CommonFlags & { keepNamespace?: boolean; images?: boolean }) => {
      const session = await openSession(workDir(program), flags, true, { needsRegistry: false });
      const { down } = await import('../../core/engine/down.js');
      await down(session.bus, { project: session.project, developer: session.developer, target: session.target, keepNamespace: !!flags.keepNamespace, images: !!flags.images });
    });
}
