import { describe, expect, it } from 'vitest';
import { commandName } from './main.js';

describe('commandName', () => {
  it('skips global options and their values', () => {
    expect(commandName(['-C', '/repo', 'plan', '--json'])).toBe('plan');
    expect(commandName(['--cwd', 'plan', 'up'])).toBe('up');
    expect(commandName(['--cwd=/x', 'status'])).toBe('status');
    expect(commandName(['--help'])).toBeUndefined();
  });
});
