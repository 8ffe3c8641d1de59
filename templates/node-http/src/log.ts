import { logLevels, type LogLevel } from './config.ts';

export type Logger = Record<LogLevel, (msg: string, attrs?: Record<string, unknown>) => void>;

/** A structured logger writing one JSON object per line, the format log collectors parse without help. */
export function createLogger(service: string, level: LogLevel, write: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  const min = logLevels.indexOf(level);
  const entry = (lvl: LogLevel) => (msg: string, attrs: Record<string, unknown> = {}) => {
    if (logLevels.indexOf(lvl) < min) return;
    write(`${JSON.stringify({ time: new Date().toISOString(), level: lvl.toUpperCase(), msg, service, ...attrs })}\n`);
  };
  return { debug: entry('debug'), info: entry('info'), warn: entry('warn'), error: entry('error') };
}
