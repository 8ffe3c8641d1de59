import type { KubernetesObject } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerClient } from '../../core/build/docker.js';
import { execIn, kindLoad, kindNodes } from '../../core/build/kind.js';
import { docker, removeImage } from '../support/docker.js';
import { infraEnv, kindKubeconfig, uniqueName } from '../support/env.js';
import { type TestNamespace, createTestNamespace, kindKube, waitForReadyPod } from '../support/kube.js';
import { callWhoami, whoamiImage } from '../support/mesh.js';

const NODE = 'devloop-control-plane';

// core/build/kind.ts's kindLoad against the real kind node (core/build/kind.stand-in.integration.test.ts covers the same code
// against a stand-in container, fast and without kind).
describe('kindLoad into the real kind cluster "devloop"', () => {
  const ref = `devloop-e2e/kind-load:${uniqueName('t')}`;
  let ns: TestNamespace;

  beforeAll(async () => {
    kindKubeconfig(); // fails naming what is missing when the kind cluster is not up
    infraEnv();
    const [repo, tag] = ref.split(':') as [string, string];
    await docker().getImage(await whoamiImage()).tag({ repo, tag });
    ns = await createTestNamespace('kind-load', kindKube());
  });

  afterAll(async () => {
    await ns?.cleanup();
    await removeImage(ref);
  });

  it('finds the node container by kind’s cluster label', async () => {
    const nodes = await kindNodes(await dockerClient(), 'devloop');
    expect(nodes.map((n) => n.Names[0])).toEqual([`/${NODE}`]);
  });

  it('imports the image into the node once, then skips it', async () => {
    const engine = await dockerClient();
    const progress: string[] = [];
    expect(await kindLoad(engine, 'devloop', ref, (m) => progress.push(m))).toEqual({ loaded: [NODE], skipped: [] });
    expect(progress).toEqual([`importing into ${NODE}`]);
    const listed = await execIn(engine, NODE, ['ctr', '--namespace=k8s.io', 'images', 'ls', '-q']);
    expect(listed.stdout.split('\n')).toContain(`docker.io/${ref}`);
    expect(await kindLoad(engine, 'devloop', ref, () => {})).toEqual({ loaded: [], skipped: [NODE] });
  });

  it('runs a pod from the loaded image without pulling', async () => {
    await kindKube().objects.create({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'loaded', namespace: ns.name, labels: { app: 'loaded' } },
      spec: {
        containers: [
          {
            name: 'whoami',
            image: ref,
            imagePullPolicy: 'Never',
            env: [{ name: 'POD_NAME', value: 'loaded' }],
            readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
          },
        ],
      },
    } as KubernetesObject);
    const pod = await waitForReadyPod(ns.name, 'app=loaded', 120_000, kindKube());
    expect(await callWhoami(ns.name, `${pod.status!.podIP}:8080`)).toBe('loaded');
  });
});
