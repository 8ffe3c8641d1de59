import { describe, expect, it } from 'vitest';
import { formatEvent, jsonRenderer, plainRenderer } from './plain.js';

describe('plain renderer', () => {
  it('prints one timestamped line per event, without ANSI codes when colour is off', () => {
    const out: string[] = [];
    const render = plainRenderer({ color: false, verbose: false, write: (l) => out.push(l) });
    const at = new Date(2026, 0, 2, 3, 4, 5).getTime();
    render({ type: 'rollout.failed', at, service: 'web', reason: 'CrashLoopBackOff', message: 'container web keeps exiting' });
    render({ type: 'build.log', at, service: 'web', line: 'hidden unless verbose' });
    expect(out).toEqual(['03:04:05 web CrashLoopBackOff: container web keeps exiting\n']);
  });

  it('adds the failing step and last output lines to a build failure, and colours it when asked', () => {
    const lines = formatEvent(
      { type: 'build.failed', at: 0, service: 'api', step: 'Step 3/5 : RUN make (api/Dockerfile:4)', message: 'exit 2', lastLines: ['make: *** [all] Error 1'] },
      { color: false, verbose: false },
    );
    expect(lines).toEqual(['api build failed at Step 3/5 : RUN make (api/Dockerfile:4): exit 2', 'api | make: *** [all] Error 1']);
    expect(formatEvent({ type: 'rollout.ready', at: 0, service: 'api', durationMs: 1500 }, { color: true, verbose: false })[0]).toContain('\u001b[32m');
  });

  it('prints events as JSON lines', () => {
    const out: string[] = [];
    jsonRenderer((l) => out.push(l))({ type: 'deploy.pruned', at: 1, service: 'api', object: 'ConfigMap/old' });
    expect(JSON.parse(out[0]!)).toEqual({ type: 'deploy.pruned', at: 1, service: 'api', object: 'ConfigMap/old' });
  });
});
