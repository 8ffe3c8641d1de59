import type { Command } from 'commander';
import type { ProjectConfig, ServiceConfig } from '../../core/config/types.js';
import { UserError } from '../../core/errors.js';
import { workDir } from '../main.js';

export interface OpenFlags {
  port?: string;
  namespace?: string;
  context?: string;
}

/** The namespace `open` looks for the service in: --namespace, else the shared baseline, else devloop.yaml's, else the developer's own. */
export function openNamespace(project: ProjectConfig, developer: string, flags: OpenFlags, developerNamespace: (project: string, developer: string) => string): string {
  return flags.namespace ?? project.shared?.baseline ?? project.namespace ?? developerNamespace(project.name, developer);
}

/** A TCP port given on the command line: 1–65535. */
export function parsePort(text: string, what: string): number {
  const n = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new UserError(`${what} must be a port number from 1 to 65535, not "${text}"`, { hint: 'e.g. --port 8080' });
  return n;
}

/** The service of devloop.yaml named `name`; an unknown one is a user error listing the known ones. */
export function findService(project: ProjectConfig, name: string): ServiceConfig {
  const service = project.services.find((s) => s.name === name);
  if (!service) {
    const known = project.services.map((s) => s.name);
    throw new UserError(`unknown service "${name}"`, { hint: known.length > 0 ? `devloop.yaml lists: ${known.join(', ')}` : 'devloop.yaml lists no services' });
  }
  return service;
}

/** `local:remote` of the service's first `ports` entry, if it has one. */
function configuredPorts(service: ServiceConfig): { local?: number; remote?: number } {
  const first = service.ports[0];
  if (!first) return {};
  const [local, remote] = first.split(':').map(Number);
  return { ...(local ? { local } : {}), ...(remote || local ? { remote: remote || local } : {}) };
}

/** The line that says where the port leads. */
export function describeOpen(service: string, local: number, developer: string, to: string): string {
  return `open ${service} → http://127.0.0.1:${local} (requests carry devloop-route=${developer}; ${to})`;
}

export function register(program: Command): void {
  program
    .command('open <service>')
    .description('a local port whose requests carry your routing key: to your fork of <service> if you have one, else to the baseline')
    .option('--port <local>', 'the local port on 127.0.0.1 (default: the service’s first `ports` entry, else the Service’s port)')
    .option('-n, --namespace <name>', 'the namespace the service runs in (default: devloop.yaml’s `namespace`)')
    .option('--context <name>', 'kube context to use instead of the current one')
    .action(async (name: string, flags: OpenFlags) => {
      await open(workDir(program), name, flags);
    });
}

async function open(dir: string, name: string, flags: OpenFlags): Promise<void> {
  const requestedPort = flags.port === undefined ? undefined : parsePort(flags.port, '--port');
  const [{ loadProject }, { resolveDeveloper, developerNamespace }, { loadKube }] = await Promise.all([
    import('../../core/config/load.js'),
    import('../../core/target/select.js'),
    import('../../core/deploy/kube.js'),
  ]);
  const project = await loadProject(dir);
  const service = findService(project, name);
  const developer = await resolveDeveloper(project);
  const kube = await loadKube(flags.context);
  if (!kube) throw new UserError('no Kubernetes context is configured', { hint: 'set KUBECONFIG or pass --context' });
  const namespace = openNamespace(project, developer, flags, developerNamespace);

  const [{ readBaselineService, servicePodPort, UpstreamFollower }, { KeyedPortForward }] = await Promise.all([
    import('../../core/route/upstream.js'),
    import('../../core/route/keyed-proxy.js'),
  ]);
  const svc = await readBaselineService(kube, namespace, name);
  const configured = configuredPorts(service);
  const servicePort = servicePodPort(svc);
  const remote = servicePort?.podPort ?? configured.remote;
  if (remote === undefined) {
    throw new UserError(`the pod port behind Service "${name}" is a named port, which devloop cannot resolve`, {
      hint: `give ${name} \`ports: ["<local>:<pod port>"]\` in devloop.yaml`,
    });
  }
  const local = requestedPort ?? configured.local ?? servicePort?.port ?? remote;

  const forward = new KeyedPortForward(kube, namespace, local, remote, developer, {
    service: name,
    hint: 'stop what listens there, or choose another port with --port',
    onEvent: (e) => process.stderr.write(`${name}: ${e.message}\n`),
  });
  await forward.listen();
  let announced = false;
  const follower = new UpstreamFollower(
    kube,
    namespace,
    name,
    developer,
    svc.spec!.selector!,
    (upstream) => {
      forward.setPod(upstream?.pod);
      if (!announced) return;
      process.stdout.write(upstream ? `${name}: now to ${upstream.name}${upstream.kind === 'baseline' ? ' (baseline)' : ''}, pod/${upstream.pod}\n` : `${name}: no ready pod; waiting\n`);
    },
    (message) => process.stderr.write(`warning: ${message}\n`),
  );
  try {
    const first = await follower.start();
    announced = true;
    const to = first ? `to ${first.name}${first.kind === 'baseline' ? ' (baseline)' : ''}` : `waiting for a ready pod of ${name}`;
    process.stdout.write(`${describeOpen(name, local, developer, to)}\n`);
    // Serves until Ctrl-C or SIGTERM.
    await new Promise<void>((resolve) => {
      const stop = () => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  } finally {
    follower.close();
    await forward.close();
  }
}
