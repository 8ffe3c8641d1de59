import { execFileSync } from 'node:child_process';

/** A real terminal: a detached tmux session of a fixed size, driven with send-keys and read with capture-pane. */
export class TmuxTerminal {
  private constructor(readonly session: string) {}

  /** Starts `command` (a shell command line) in a new `columns`×`rows` terminal in `cwd`, with `env` added. */
  static start(opts: { session: string; cwd: string; command: string; env: Record<string, string>; columns: number; rows: number }): TmuxTerminal {
    try {
      execFileSync('tmux', ['-V'], { stdio: 'pipe' });
    } catch {
      throw new Error('tmux is needed to run the dashboard in a real terminal and was not found: apt-get install -y tmux');
    }
    // A real terminal is not CI, even when the suite runs in CI: ink (and devloop) draw differently under CI=true.
    const env = { CI: 'false', ...opts.env };
    const envArgs = Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]);
    execFileSync('tmux', ['new-session', '-d', '-s', opts.session, '-x', String(opts.columns), '-y', String(opts.rows), '-c', opts.cwd, ...envArgs], { stdio: 'pipe' });
    // The pane keeps its contents after the command ends, so the exit line can be read.
    execFileSync('tmux', ['set-option', '-t', opts.session, 'remain-on-exit', 'on'], { stdio: 'pipe' });
    const t = new TmuxTerminal(opts.session);
    t.keys(opts.command, 'Enter');
    return t;
  }

  /** What the terminal shows now, one string per row. */
  screen(): string {
    return execFileSync('tmux', ['capture-pane', '-p', '-t', this.session], { encoding: 'utf8' });
  }

  /** Sends keys as tmux names them ("Enter", "Up", "C-c") or literal text. */
  keys(...keys: string[]): void {
    execFileSync('tmux', ['send-keys', '-t', this.session, ...keys], { stdio: 'pipe' });
  }

  resize(columns: number, rows: number): void {
    execFileSync('tmux', ['resize-window', '-t', this.session, '-x', String(columns), '-y', String(rows)], { stdio: 'pipe' });
  }

  /** Polls the screen until `expected` matches; fails with the last screen. */
  async waitFor(expected: RegExp, what: string, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let last = '';
    for (;;) {
      last = this.screen();
      if (expected.test(last)) return last;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (${expected})\n--- screen\n${last}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  kill(): void {
    try {
      execFileSync('tmux', ['kill-session', '-t', this.session], { stdio: 'pipe' });
    } catch {
      // Already gone.
    }
  }
}
