import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage, pushImage, removeImage } from '../support/docker.js';
import { infraEnv, uniqueName } from '../support/env.js';
import {
  type PortForwardHandle,
  type TestNamespace,
  createTestNamespace,
  execInPod,
  kube,
  podLogs,
  portForward,
  waitForDeployment,
  waitForReadyPod,
} from '../support/kube.js';

// A Node HTTP server built FROM the local node:24-slim stand-in: it logs every request so logs can be checked.
const SERVER_JS = `
const http = require('node:http');
const os = require('node:os');
http.createServer((req, res) => {
  console.log('request ' + req.method + ' ' + req.url);
  res.end('hello from ' + os.hostname() + '\\n');
}).listen(8080, () => console.log('listening on 8080'));
process.on('SIGTERM', () => process.exit(0));
`;

const DOCKERFILE = `FROM node:24-slim
COPY server.js /app/server.js
USER node
CMD ["node", "/app/server.js"]
`;

describe('a workload built, pushed and deployed on the real cluster', () => {
  let ns: TestNamespace;
  let image: string;
  let webPod: string;
  let forward: PortForwardHandle | undefined;

  beforeAll(async () => {
    const { registry } = infraEnv();
    image = `${registry}/devloop-e2e/web:${uniqueName('t')}`;
    await buildImage({ Dockerfile: DOCKERFILE, 'server.js': SERVER_JS }, image);
    await pushImage(image);
    ns = await createTestNamespace('smoke');

    const labels = { app: 'web' };
    await kube().apps.createNamespacedDeployment({
      namespace: ns.name,
      body: {
        metadata: { name: 'web', labels },
        spec: {
          replicas: 1,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              containers: [
                {
                  name: 'web',
                  image,
                  ports: [{ containerPort: 8080, name: 'http' }],
                  readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
                },
              ],
            },
          },
        },
      },
    });
    await kube().core.createNamespacedService({
      namespace: ns.name,
      body: {
        metadata: { name: 'web' },
        spec: { selector: labels, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
      },
    });
    await waitForDeployment(ns.name, 'web');
    webPod = (await waitForReadyPod(ns.name, 'app=web')).metadata!.name!;
  });

  afterAll(async () => {
    await forward?.close();
    await ns?.cleanup();
    if (image) await removeImage(image);
  });

  it('runs the image pulled from the local registry', async () => {
    const pod = await kube().core.readNamespacedPod({ name: webPod, namespace: ns.name });
    expect(pod.status?.containerStatuses?.[0]?.image).toContain('devloop-e2e/web');
    expect(pod.status?.containerStatuses?.[0]?.ready).toBe(true);
  });

  it('executes a command in the container', async () => {
    const result = await execInPod(ns.name, webPod, 'web', ['sh', '-c', 'node --version; id -un']);
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toMatch(/^v24\.\d+\.\d+\nnode\n$/);
  });

  it('reports a failing command with its exit code', async () => {
    const result = await execInPod(ns.name, webPod, 'web', ['sh', '-c', 'echo oops >&2; exit 3']);
    expect(result.exitCode).toBe(3);
    expect(result.stderr).toContain('oops');
  });

  it('forwards a local port to the pod and gets an HTTP answer', async () => {
    forward = await portForward(ns.name, webPod, 8080);
    const res = await fetch(`http://127.0.0.1:${forward.localPort}/through-port-forward`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe(`hello from ${webPod}\n`);
  });

  it("reads the pod's logs", async () => {
    const logs = await podLogs(ns.name, webPod, 'web');
    expect(logs).toContain('listening on 8080');
    expect(logs).toContain('request GET /through-port-forward');
  });

  it('reaches the Service by DNS name from a second pod (pulled through localhost:5000)', async () => {
    const { registry } = infraEnv();
    const viaLocalhost = image.replace(registry, `localhost:${registry.split(':')[1]}`);
    await kube().core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: 'client', labels: { app: 'client' } },
        spec: {
          containers: [{ name: 'client', image: viaLocalhost, command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'] }],
          terminationGracePeriodSeconds: 1,
        },
      },
    });
    await waitForReadyPod(ns.name, 'app=client');
    const fetchScript = (url: string) => `fetch(${JSON.stringify(url)}).then((r) => r.text()).then((t) => process.stdout.write(t))`;
    for (const url of ['http://web/', `http://web.${ns.name}.svc.cluster.local/`]) {
      const result = await execInPod(ns.name, 'client', 'client', ['node', '-e', fetchScript(url)]);
      expect({ url, ...result }).toEqual({ url, stdout: `hello from ${webPod}\n`, stderr: '', exitCode: 0 });
    }
  });

  it('answers names outside the cluster with NXDOMAIN instead of forwarding them', async () => {
    const script = "require('node:dns').lookup('example.com', (err) => console.log(err ? err.code : 'resolved'))";
    const result = await execInPod(ns.name, 'client', 'client', ['node', '-e', script]);
    expect(result.stdout.trim()).toBe('ENOTFOUND');
  });
});
