import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import { baggageMember, routedFetch, routeBaggageKey, routingFromHeaders, runWithRouting } from './routing.ts';

const listen = (server: Server) =>
  new Promise<string>((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)),
  );
const close = (server: Server) => new Promise<void>((resolve) => server.close(() => resolve()));

test('baggageMember finds the member, ignoring spaces and properties', () => {
  assert.equal(baggageMember('', routeBaggageKey), '');
  assert.equal(baggageMember('devloop-route=alice', routeBaggageKey), 'alice');
  assert.equal(baggageMember('a=1, devloop-route = bob ;prop, c=3', routeBaggageKey), 'bob');
  assert.equal(baggageMember('devloop-router=x', routeBaggageKey), '');
});

test('the routing context of an incoming request reaches the next service', async () => {
  let downstream: IncomingHttpHeaders = {};
  const backend = createServer((req, res) => {
    downstream = req.headers;
    res.end();
  });
  const backendUrl = await listen(backend);
  const frontend = createServer((req, res) =>
    runWithRouting(routingFromHeaders(req.headers), async () => {
      await new Promise((r) => setTimeout(r, 1)); // the context survives awaits
      await routedFetch(backendUrl, { headers: { accept: 'application/json' } });
      res.end();
    }),
  );
  const frontendUrl = await listen(frontend);
  try {
    await fetch(frontendUrl, { headers: { baggage: 'tenant=acme,devloop-route=alice' } });
    assert.equal(downstream['x-devloop-route'], 'alice');
    assert.equal(downstream.baggage, 'tenant=acme,devloop-route=alice');
    assert.equal(downstream.accept, 'application/json');
  } finally {
    await close(frontend);
    await close(backend);
  }
});

test('no routing context, no routing headers', async () => {
  let downstream: IncomingHttpHeaders = {};
  const backend = createServer((req, res) => {
    downstream = req.headers;
    res.end();
  });
  const url = await listen(backend);
  try {
    await routedFetch(url);
    assert.equal(downstream.baggage, undefined);
    assert.equal(downstream['x-devloop-route'], undefined);
  } finally {
    await close(backend);
  }
});
