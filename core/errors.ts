/**
 * The error hierarchy every stage throws. The CLI maps kinds to exit codes and prints `message` (plus `hint`)
 * as one line per problem; `detail` goes to logs.
 *
 * - UserError: something the user can fix (bad config, missing tool, forbidden). Exit 2.
 * - ExternalError: a command or API call failed; names the call and carries its output. Exit 1.
 * - InternalError: a bug in devloop. Exit 70.
 */
export type ErrorKind = 'user' | 'external' | 'internal';

export abstract class DevloopError extends Error {
  abstract readonly kind: ErrorKind;
  readonly hint: string | undefined;
  readonly detail: string | undefined;

  constructor(message: string, opts: { hint?: string; detail?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.hint = opts.hint;
    this.detail = opts.detail;
  }
}

export class UserError extends DevloopError {
  readonly kind = 'user' as const;
}

/** One or more independent problems found at once (e.g. every error in a config file). */
export class UserErrors extends UserError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[], opts: { hint?: string } = {}) {
    super(problems.join('\n'), opts);
    this.problems = problems;
  }
}

export class ExternalError extends DevloopError {
  readonly kind = 'external' as const;
}

export class InternalError extends DevloopError {
  readonly kind = 'internal' as const;
}

export function exitCodeFor(err: unknown): number {
  if (err instanceof DevloopError) {
    return err.kind === 'user' ? 2 : err.kind === 'external' ? 1 : 70;
  }
  return 70;
}

/** Formats an error for a terminal: the message, then the hint on its own line. */
export function formatError(err: unknown): string {
  if (err instanceof DevloopError) {
    const lines = [err.kind === 'internal' ? `internal error (a bug in devloop): ${err.message}` : err.message];
    if (err.hint) lines.push(`hint: ${err.hint}`);
    return lines.join('\n');
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return `internal error (a bug in devloop): ${e.stack ?? e.message}`;
}

/** One line for a dashboard row or a plain log line: the message and its hint; the first line of anything else. */
export function oneLine(err: unknown): string {
  if (err instanceof DevloopError) return err.hint ? `${err.message} (${err.hint})` : err.message;
  return formatError(err).split('\n')[0]!;
}
