import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// Runs the build's crash handling in a process of its own (dist/, from `npm run build`): an error nobody handled
// must reach the active command's handler, which reports and stops, and devloop exits with 70, not with a crash.
const crashModule = fileURLToPath(new URL('../dist/cli/crash.js', import.meta.url));

function run(script: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? -1) : 0, stdout, stderr });
    });
  });
}

describe('crash handling', () => {
  it('hands an unhandled rejection to the running command, which stops cleanly; exit code 70', async () => {
    const r = await run(`
      const { installCrashHandlers, onInternalError } = await import(${JSON.stringify(crashModule)});
      installCrashHandlers();
      onInternalError(async (err) => { console.log('reported:', err.message); await new Promise((r) => setTimeout(r, 50)); console.log('stopped'); });
      Promise.reject(new Error('boom'));
      setTimeout(() => console.log('still running after the stop'), 300);
    `);
    expect(r.stdout).toBe('reported: boom\nstopped\nstill running after the stop\n');
    expect(r.code).toBe(70);
  });

  it('without a running command, prints the error as a bug and exits 70', async () => {
    const r = await run(`
      const { installCrashHandlers } = await import(${JSON.stringify(crashModule)});
      installCrashHandlers();
      setTimeout(() => { throw new Error('kaboom'); }, 10);
      setTimeout(() => console.log('not reached'), 500);
    `);
    expect(r.stderr).toMatch(/^internal error \(a bug in devloop\): Error: kaboom/);
    expect(r.stdout).toBe('');
    expect(r.code).toBe(70);
  });
});
