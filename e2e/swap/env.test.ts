import { readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../up/harness.js';
import { uniqueName } from '../support/index.js';
import { createFixture, SwapProcess, swapObjects, type Fixture } from './harness.js';

// `devloop swap web -- CMD`: CMD runs with web's environment, reaches the namespace's other Services through the
// injected <SVC>_SERVICE_HOST/PORT, reads web's mounted ConfigMap under DEVLOOP_MOUNTS; its exit ends the swap.
describe('devloop swap -- CMD', () => {
  let fx: Fixture;
  const out = path.join(os.tmpdir(), `${uniqueName('dl-swap-env')}.json`);
  const envFile = path.join(os.tmpdir(), `${uniqueName('dl-swap-env')}.env`);

  beforeAll(async () => {
    buildCli();
    fx = await createFixture('env');
  });

  afterAll(async () => {
    await rm(out, { force: true });
    await rm(envFile, { force: true });
    await fx?.cleanup();
  });

  it("runs the command with the workload's environment and restores when it exits, with its exit code", async () => {
    const script = `
const fs = require('fs');
(async () => {
  const orders = await (await fetch('http://' + process.env.ORDERS_SERVICE_HOST + ':' + process.env.ORDERS_SERVICE_PORT + '/')).text();
  fs.writeFileSync(${JSON.stringify(out)}, JSON.stringify({
    greeting: process.env.GREETING, token: process.env.TOKEN, level: process.env.LEVEL, ns: process.env.MY_NAMESPACE,
    combined: process.env.COMBINED, ordersHost: process.env.ORDERS_SERVICE_HOST, orders,
    mounted: fs.readFileSync(process.env.DEVLOOP_MOUNTS + '/etc/web/level', 'utf8'),
  }));
  process.exit(7);
})();`;
    // Node.js itself refuses to start when an argument --env-file names a missing file (nodejs/node#54232): it exists.
    await writeFile(envFile, '');
    const swap = new SwapProcess(fx, fx.developer, ['web', '--port', '18480:80', '--env-file', envFile, '--', process.execPath, '-e', script]);
    expect(await swap.exited, swap.explain()).toBe(7);
    const seen = JSON.parse(await readFile(out, 'utf8')) as Record<string, string>;
    expect(seen).toEqual({
      greeting: 'hello from web',
      token: 's3cr3t-token-value',
      level: 'debug',
      ns: fx.namespace,
      combined: 'debug-hello from web',
      ordersHost: '127.0.0.1',
      orders: 'orders here',
      mounted: 'debug',
    });
    // The same environment as a dotenv file; the secret is in it, but never in devloop's own output.
    const dotenv = await readFile(envFile, 'utf8');
    expect(dotenv).toContain('TOKEN="s3cr3t-token-value"');
    expect(dotenv).toMatch(/^ORDERS_SERVICE_PORT="\d+"$/m);
    expect(swap.stdout + swap.stderr).not.toContain('s3cr3t-token-value');
    expect(swap.events.find((e) => e.type === 'swap.restored')).toMatchObject({ by: 'devloop' });
    expect(await swapObjects(fx.namespace)).toEqual([]);
  });
});
