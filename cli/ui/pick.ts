export type RendererKind = 'dashboard' | 'plain' | 'json';

export interface RendererContext {
  json?: boolean | undefined;
  stdout: { isTTY?: boolean | undefined };
  stdin: { isTTY?: boolean | undefined };
  env: Record<string, string | undefined>;
}

/**
 * `--json` gets JSON lines; a terminal on both ends gets the dashboard; anything else (a pipe, a file, CI, a dumb
 * terminal, or DEVLOOP_UI=plain) gets plain lines.
 */
export function pickRenderer(ctx: RendererContext): RendererKind {
  if (ctx.json) return 'json';
  if (!ctx.stdout.isTTY || !ctx.stdin.isTTY) return 'plain';
  const ci = ctx.env.CI;
  if (ci !== undefined && ci !== '' && ci !== 'false' && ci !== '0') return 'plain';
  if (ctx.env.TERM === 'dumb' || ctx.env.DEVLOOP_UI === 'plain') return 'plain';
  return 'dashboard';
}
