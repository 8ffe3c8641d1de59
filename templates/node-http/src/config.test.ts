import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from './config.ts';

test('defaults', () => {
  assert.deepEqual(loadConfig({}), { port: 8080, logLevel: 'info', shutdownTimeoutMs: 20_000 });
});

test('every bad value is reported at once', () => {
  assert.throws(() => loadConfig({ PORT: 'http', LOG_LEVEL: 'loud' }), (err: Error) => {
    assert.match(err.message, /PORT="http"/);
    assert.match(err.message, /LOG_LEVEL="loud"/);
    return true;
  });
});
