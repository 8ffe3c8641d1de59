import { describe, expect, it } from 'vitest';
import { pickRenderer } from './pick.js';

const tty = { isTTY: true };
const pipe = { isTTY: false };

describe('pickRenderer', () => {
  it('gives a terminal the dashboard, everything else plain lines, and --json JSON lines', () => {
    expect(pickRenderer({ stdout: tty, stdin: tty, env: {} })).toBe('dashboard');
    expect(pickRenderer({ stdout: pipe, stdin: tty, env: {} })).toBe('plain');
    expect(pickRenderer({ stdout: tty, stdin: pipe, env: {} })).toBe('plain');
    expect(pickRenderer({ stdout: tty, stdin: tty, env: { CI: 'true' } })).toBe('plain');
    expect(pickRenderer({ stdout: tty, stdin: tty, env: { CI: 'false' } })).toBe('dashboard');
    expect(pickRenderer({ stdout: tty, stdin: tty, env: { TERM: 'dumb' } })).toBe('plain');
    expect(pickRenderer({ stdout: tty, stdin: tty, env: { DEVLOOP_UI: 'plain' } })).toBe('plain');
    expect(pickRenderer({ json: true, stdout: tty, stdin: tty, env: {} })).toBe('json');
    expect(pickRenderer({ json: true, stdout: pipe, stdin: pipe, env: { CI: '1' } })).toBe('json');
  });
});
