import { loadConfig } from './config.ts';
import { createLogger } from './log.ts';
import { createApp } from './server.ts';

const service = '{{name}}';

let config;
try {
  config = loadConfig(process.env);
} catch (err) {
  process.stderr.write(`${service}: ${(err as Error).message}\n`);
  process.exit(2);
}
const logger = createLogger(service, config.logLevel);
const app = createApp(logger);

app.server.listen(config.port, () => logger.info('started', { port: config.port, node: process.version }));

// On SIGTERM fail readiness, stop accepting connections and let in-flight requests finish.
const shutdown = (signal: string) => {
  logger.info('shutting down', { signal, timeoutMs: config.shutdownTimeoutMs });
  app.drain();
  app.server.close(() => {
    logger.info('stopped');
    process.exit(0);
  });
  app.server.closeIdleConnections();
  setTimeout(() => {
    logger.warn('graceful stop timed out; closing remaining connections');
    app.server.closeAllConnections();
    process.exit(1);
  }, config.shutdownTimeoutMs).unref();
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
