import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { createLogger } from './log.ts';
import { createApp, type App } from './server.ts';

let app: App;
let base: string;

before(async () => {
  app = createApp(createLogger('test', 'error', () => {}));
  await new Promise<void>((resolve) => app.server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((resolve) => app.server.close(() => resolve())));

test('GET /v1/hello greets and echoes the routing key', async () => {
  const res = await fetch(`${base}/v1/hello?name=Ada`, { headers: { baggage: 'devloop-route=alice' } });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { message: 'Hello, Ada!', route: 'alice' });
});

test('unknown routes answer 404 in JSON', async () => {
  const res = await fetch(`${base}/nowhere`);
  assert.equal(res.status, 404);
  assert.match((await res.json()).error, /no route/);
});

test('/metrics counts requests by route', async () => {
  await fetch(`${base}/v1/hello`);
  const text = await (await fetch(`${base}/metrics`)).text();
  assert.match(text, /http_server_requests_total\{route="GET \/v1\/hello",method="GET",code="200"\} \d+/);
  assert.match(text, /http_server_requests_total\{route="unmatched",method="GET",code="404"\} 1/);
});

test('/healthz is 200, then 503 once draining', async () => {
  assert.equal((await fetch(`${base}/healthz`)).status, 200);
  app.drain();
  assert.equal((await fetch(`${base}/healthz`)).status, 503);
});
