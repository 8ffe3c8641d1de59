import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from './log.ts';
import { currentRouting, routingFromHeaders, runWithRouting } from './routing.ts';

export interface App {
  server: Server;
  /** Makes /healthz answer 503 so that readiness fails and the pod leaves the Service endpoints. */
  drain(): void;
}

type Handler = (req: IncomingMessage, url: URL) => { status: number; body: unknown };

/** Builds the HTTP server: the routes, /healthz, /metrics, the routing context and a request log. */
export function createApp(logger: Logger): App {
  let draining = false;
  const requests = new Map<string, number>(); // "route method code" → count, for /metrics

  const routes = new Map<string, Handler>([
    ['GET /v1/hello', (_req, url) => ({
      status: 200,
      body: { message: `Hello, ${url.searchParams.get('name') || 'world'}!`, route: currentRouting()?.route || undefined },
    })],
    ['GET /healthz', () => (draining ? { status: 503, body: { status: 'draining' } } : { status: 200, body: { status: 'ok' } })],
  ]);

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const start = performance.now();
    const url = new URL(req.url ?? '/', 'http://localhost');
    const key = `${req.method} ${url.pathname}`;
    if (key === 'GET /metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metricsText(requests));
      return;
    }
    const route = routes.get(key);
    const { status, body } = route ? route(req, url) : { status: 404, body: { error: `no route for ${key}` } };
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    const counted = `${route ? key : 'unmatched'} ${req.method} ${status}`;
    requests.set(counted, (requests.get(counted) ?? 0) + 1);
    logger.debug('request', { method: req.method, path: url.pathname, status, ms: performance.now() - start, route: currentRouting()?.route });
  };

  const server = createServer((req, res) => runWithRouting(routingFromHeaders(req.headers), () => handle(req, res)));
  return { server, drain: () => void (draining = true) };
}

function metricsText(requests: Map<string, number>): string {
  const lines = [
    '# HELP http_server_requests_total HTTP requests completed, by route, method and status code.',
    '# TYPE http_server_requests_total counter',
  ];
  for (const [key, n] of requests) {
    const [route, method, code] = splitLast2(key);
    lines.push(`http_server_requests_total{route="${route}",method="${method}",code="${code}"} ${n}`);
  }
  lines.push('# HELP process_uptime_seconds Time since the process started.', '# TYPE process_uptime_seconds gauge');
  lines.push(`process_uptime_seconds ${process.uptime()}`);
  return `${lines.join('\n')}\n`;
}

function splitLast2(key: string): [string, string, string] {
  const parts = key.split(' ');
  const code = parts.pop() ?? '';
  const method = parts.pop() ?? '';
  return [parts.join(' '), method, code];
}
