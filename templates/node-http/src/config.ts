/** The service's settings, read from environment variables. */
export interface Config {
  /** Serves the API, /healthz and /metrics (PORT, default 8080). */
  port: number;
  /** debug, info, warn or error (LOG_LEVEL, default info). */
  logLevel: LogLevel;
  /** Bound on the graceful drain after SIGTERM, in ms (SHUTDOWN_TIMEOUT_MS, default 20000). */
  shutdownTimeoutMs: number;
}

export const logLevels = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof logLevels)[number];

/** Reads the configuration from `env` and reports every bad value at once. */
export function loadConfig(env: Record<string, string | undefined>): Config {
  const problems: string[] = [];
  const int = (name: string, fallback: number, min: number, max: number): number => {
    const raw = env[name];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${name}=${JSON.stringify(raw)}: want an integer between ${min} and ${max}`);
      return fallback;
    }
    return n;
  };
  const port = int('PORT', 8080, 1, 65535);
  const shutdownTimeoutMs = int('SHUTDOWN_TIMEOUT_MS', 20_000, 1, 3_600_000);
  const level = env.LOG_LEVEL ?? 'info';
  if (!(logLevels as readonly string[]).includes(level)) {
    problems.push(`LOG_LEVEL=${JSON.stringify(level)}: want one of ${logLevels.join(', ')}`);
  }
  if (problems.length > 0) throw new Error(`bad configuration:\n${problems.join('\n')}`);
  return { port, logLevel: level as LogLevel, shutdownTimeoutMs };
}
