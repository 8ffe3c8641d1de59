import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot, waitFor } from '../support/env.js';
import { buildCli, fixtureRepo } from '../up/harness.js';

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;?]*[A-Za-z]|\u001b[()][A-Za-z0-9]|\r/g;

/** Runs the built CLI in a real pseudo-terminal (util-linux `script`), so it sees a TTY as a developer's shell does. */
function inTerminal(cwd: string, args: string[]) {
  const command = [process.execPath, path.join(repoRoot, 'bin/devloop.js'), ...args].map((a) => `'${a}'`).join(' ');
  const child = spawn('script', ['-qfec', command, '/dev/null'], { cwd, env: { ...process.env, CI: 'false', NO_COLOR: '1', COLUMNS: '120', LINES: '40' } });
  let screen = '';
  let seen = 0; // `after` looks only at output after what it matched last
  child.stdout.on('data', (d: Buffer) => (screen += d.toString('utf8').replace(ANSI, '')));
  child.stderr.on('data', (d: Buffer) => (screen += d.toString('utf8').replace(ANSI, '')));
  const exit = new Promise<number>((resolve) => child.on('close', (code) => resolve(code ?? -1)));
  return {
    screen: () => screen,
    exit,
    /** Sends keys once `expected` is on the screen. */
    async after(expected: RegExp, keys: string) {
      await waitFor(`"${String(expected)}" on the terminal`, async () => {
        const rest = screen.slice(seen);
        const m = expected.exec(rest);
        if (!m) return undefined;
        seen += m.index + m[0].length;
        return true;
      }, {
        timeoutMs: 20_000,
        intervalMs: 100,
        describe: async () => `screen so far:\n${screen.slice(-2000)}`,
      });
      await new Promise((r) => setTimeout(r, 100)); // let the question attach its input handler
      child.stdin.write(keys);
    },
    kill: () => child.kill(),
  };
}

describe('devloop scaffold without arguments in a terminal', () => {
  let repo: { dir: string; cleanup(): Promise<void> };
  beforeAll(async () => {
    buildCli();
    repo = await fixtureRepo();
  });
  afterAll(async () => repo?.cleanup());

  it('asks for the template, name, directory and module, then creates the service', async () => {
    const term = inTerminal(repo.dir, ['scaffold']);
    try {
      await term.after(/❯ go-grpc/, '\u001b[B'); // down: go-http
      await term.after(/❯ go-http/, '\r');
      await term.after(/Service name:/, 'orders\r'); // taken by the fixture
      await term.after(/a service named "orders" already exists/, '\u007f');
      for (const left of ['order', 'orde', 'ord', 'or', 'o']) await term.after(new RegExp(`Service name: ${left}\\s*\\n`), '\u007f');
      await term.after(/Service name:\s*\n/, 'catalog\r'); // typed, or pasted with its line break
      await term.after(/Directory \(from the project root\): services\/catalog/, '\r');
      await term.after(/Go module path: example\.com\/shop\/catalog/, '\r');
      expect(await term.exit, term.screen()).toBe(0);
    } finally {
      term.kill();
    }
    expect(term.screen()).toContain('created services/catalog/ from template go-http');
    expect(term.screen()).toContain('Go module example.com/shop/catalog (from the convention of');
    expect(await readFile(path.join(repo.dir, 'services/catalog/go.mod'), 'utf8')).toMatch(/^module example\.com\/shop\/catalog\n/);
    expect(await readFile(path.join(repo.dir, 'devloop.yaml'), 'utf8')).toContain('  - name: catalog\n    path: services/catalog\n');
  }, 60_000);

  it('esc cancels and writes nothing', async () => {
    const before = await readFile(path.join(repo.dir, 'devloop.yaml'), 'utf8');
    const term = inTerminal(repo.dir, ['scaffold']);
    try {
      await term.after(/❯ go-grpc/, '\u001b');
      expect(await term.exit).toBe(130);
    } finally {
      term.kill();
    }
    expect(term.screen()).toContain('scaffold cancelled; nothing was written');
    expect(await readFile(path.join(repo.dir, 'devloop.yaml'), 'utf8')).toBe(before);
  }, 30_000);
});
