import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { runCli } from './run-in-process.js';
import { commandName } from './main.js';

describe('commandName', () => {
  it('skips global options and their values', () => {
    expect(commandName(['-C', '/repo', 'plan', '--json'])).toBe('plan');
    expect(commandName(['--cwd', 'plan', 'up'])).toBe('up');
    expect(commandName(['--cwd=/x', 'status'])).toBe('status');
    expect(commandName(['--help'])).toBeUndefined();
  });
});

describe('devloop --version', () => {
  it('prints the version of package.json and exits 0', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const r = await runCli('--version');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`${version}\n`);
  });
});
