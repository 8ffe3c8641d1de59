import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCli } from '../up/harness.js';
import { infraTool, kindKube, kindKubeconfig } from '../support/index.js';
import { answerSoon, createFixture, httpFromCluster, localHttp, SwapProcess, swapObjects, type Fixture } from './harness.js';

const NODE = 'devloop-control-plane';

/** The image names the kind node's containerd holds. */
function nodeImages(): string[] {
  return execFileSync('docker', ['exec', NODE, 'ctr', '--namespace=k8s.io', 'images', 'ls', '-q'], { encoding: 'utf8' }).trim().split('\n');
}

// On the kind target the agent's image is delivered as the services' are: loaded into the node, no registry.
describe('devloop swap on the kind cluster', () => {
  let fx: Fixture;
  let env: Record<string, string>;

  beforeAll(async () => {
    // Fails (does not skip) when the kind cluster is not up, naming what is missing.
    env = { KUBECONFIG: kindKubeconfig(), DEVLOOP_REGISTRY: '' };
    buildCli();
    fx = await createFixture('kind', {
      k: kindKube(),
      image: async () => {
        execFileSync(infraTool('kind'), ['load', 'docker-image', 'node:24-slim', '--name', 'devloop'], { stdio: 'pipe' });
        return 'node:24-slim';
      },
    });
  });

  afterAll(async () => {
    await fx?.cleanup();
  });

  it('loads the agent image into the node and carries a request from a pod to the local process; Ctrl-C leaves nothing', async () => {
    const local = await localHttp(18780);
    const swap = new SwapProcess(fx, fx.developer, ['web', '--port', '18780:80'], env);
    try {
      const started = await swap.event('swap.started');
      expect(started).toMatchObject({ service: 'web', namespace: fx.namespace });
      const delivered = swap.events.find((e) => e.type === 'deliver.started');
      if (delivered) expect(delivered).toMatchObject({ target: 'kind' });
      const agentImage = nodeImages().find((i) => i.startsWith('docker.io/devloop/swap-agent:'));
      expect(agentImage).toBeDefined();
      await answerSoon(fx.namespace, 'http://web/', 'local http', kindKube());
      swap.kill('SIGINT');
      expect(await swap.exited, swap.explain()).toBe(0);
      await answerSoon(fx.namespace, 'http://web/', /^cluster web-/, kindKube());
      expect(await swapObjects(fx.namespace, kindKube())).toEqual([]);
    } finally {
      swap.kill('SIGKILL');
      await local.close();
    }
  });
});
