import { GitError, simpleGit, type SimpleGit } from 'simple-git';
import { ExternalError, UserError } from '../errors.js';
import { gitTimings, recordGitTimings, stripGitEnv } from './git-exec.js';

export { gitTimings, splitNul, type GitTiming } from './git-exec.js';

/**
 * A git invocation that exited non-zero; `run` turns it into an ExternalError unless the caller expects it.
 * It extends simple-git's GitError because simple-git passes those through unchanged (others become strings).
 */
export class GitCommandFailed extends GitError {
  constructor(
    readonly exitCode: number,
    readonly stderr: string,
  ) {
    super(undefined, `git exited with ${exitCode}${stderr ? `: ${stderr.trim()}` : ''}`);
  }
}

/**
 * The one door to git: every call goes through simple-git with NUL-separated output where paths are printed,
 * `GIT_OPTIONAL_LOCKS=0` (read-only commands never take index.lock, so devloop never races the user's own git
 * commands), and failures that name the command.
 */
export class GitRepo {
  private readonly git: SimpleGit;

  constructor(readonly dir: string) {
    this.git = simpleGit({
      baseDir: dir,
      maxConcurrentProcesses: 6,
      trimmed: false,
      allowEnvironment: ['GIT_OPTIONAL_LOCKS'],
      errors: (error, result) => {
        // simple-git's own check has already turned "exit code + stderr" into a generic GitError; replace it
        // with one that keeps the exit code. No exit code at all means git did not run (spawn failure).
        if (!(typeof result.exitCode === 'number' && result.exitCode > 0)) return error;
        const stderr = Buffer.concat(result.stdErr).toString('utf8');
        return new GitCommandFailed(result.exitCode, stderr);
      },
    }).env({ ...stripGitEnv(process.env), GIT_OPTIONAL_LOCKS: '0' });
  }

  /** Runs `git <args>`; resolves with stdout. Exit codes in `allowExit` resolve with `null` instead of failing. */
  async run(args: string[], opts: { allowExit?: number[] } = {}): Promise<string | null> {
    const startMs = performance.now();
    try {
      return await this.git.raw(args);
    } catch (err) {
      const failed = findGitFailure(err);
      if (failed && opts.allowExit?.includes(failed.exitCode)) return null;
      if (failed) {
        const firstLine = failed.stderr.trim().split('\n')[0];
        throw new ExternalError(`git ${args.join(' ')} failed (exit ${failed.exitCode}) in ${this.dir}${firstLine ? `: ${firstLine}` : ''}`, {
          detail: failed.stderr,
          cause: err,
        });
      }
      if (isGitMissing(err)) {
        throw new UserError('git is not installed or not on PATH', { hint: 'install git (apt-get install git)', cause: err });
      }
      throw new ExternalError(`git ${args.join(' ')} failed in ${this.dir}: ${(err as Error).message}`, { cause: err });
    } finally {
      if (recordGitTimings) gitTimings.push({ args, startMs, endMs: performance.now() });
    }
  }

  /** Like `run` but for commands that always print something on success. */
  async output(args: string[]): Promise<string> {
    return (await this.run(args)) ?? '';
  }
}

function findGitFailure(err: unknown): GitCommandFailed | undefined {
  return err instanceof GitCommandFailed ? err : undefined;
}

function isGitMissing(err: unknown): boolean {
  const text = String((err as Error)?.message ?? err);
  return /ENOENT/.test(text) && /spawn/.test(text);
}
