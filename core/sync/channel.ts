import { PassThrough, Writable } from 'node:stream';
import type Dockerode from 'dockerode';
import type { Kube } from '../deploy/kube.js';

/** A process running in a container with its standard streams: what both the sync stream and tar fallback use. */
export interface ContainerProcess {
  stdin: Writable;
  stdout: PassThrough;
  stderr: PassThrough;
  /** Settles when the process has ended: its exit code (-1 when unknown) and any message the runtime gave. */
  exit: Promise<{ code: number; message: string }>;
  /** Ends the process's connection (the process sees EOF on stdin, or is cut off). */
  close(): void;
}

/** Starts processes in one container: a Kubernetes pod's container, or a local Docker container. */
export interface ContainerExec {
  /** e.g. "pod web-7d9f/web" or "container devloop-shop-web". */
  readonly where: string;
  start(command: string[]): Promise<ContainerProcess>;
}

/** Exec through the API server and kubelet (the same stream `kubectl exec -i` uses). */
export function kubeExec(kube: Kube, namespace: string, pod: string, container: string): ContainerExec {
  return {
    where: `pod ${pod}/${container}`,
    async start(command) {
      const stdin = new PassThrough();
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      let settle!: (v: { code: number; message: string }) => void;
      const exit = new Promise<{ code: number; message: string }>((r) => (settle = r));
      let status: { status?: string; message?: string; details?: { causes?: { reason?: string; message?: string }[] } } | undefined;
      const exec = new kube.lib.Exec(kube.config);
      // stdout/stderr are given as sinks that forward into our PassThroughs without letting the client end them
      // before we have read the exit status.
      const sink = (to: PassThrough) =>
        new Writable({
          write(chunk: Buffer, _enc, done) {
            to.write(chunk);
            done();
          },
        });
      const ws = await exec.exec(namespace, pod, container, command, sink(stdout), sink(stderr), stdin, false, (s) => {
        status = s as typeof status;
      });
      ws.on('close', () => {
        const cause = status?.details?.causes?.find((c) => c.reason === 'ExitCode');
        const code = status?.status === 'Success' ? 0 : cause ? Number(cause.message) : -1;
        stdout.end();
        stderr.end();
        settle({ code, message: status?.status === 'Success' ? '' : (status?.message ?? 'connection closed') });
      });
      ws.on('error', () => {
        /* surfaced through 'close' */
      });
      return {
        stdin,
        stdout,
        stderr,
        exit,
        close: () => {
          stdin.end();
          ws.close();
        },
      };
    },
  };
}

/** Exec through the Docker engine API (docker exec -i). */
export function dockerExec(docker: Dockerode, container: string): ContainerExec {
  return {
    where: `container ${container}`,
    async start(command) {
      const exec = await docker.getContainer(container).exec({ Cmd: command, AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false });
      const duplex = (await exec.start({ hijack: true, stdin: true })) as NodeJS.ReadWriteStream & { end(): void; destroy(): void };
      const stdout = new PassThrough();
      const stderr = new PassThrough();
      docker.modem.demuxStream(duplex, stdout, stderr);
      let gone: Error | undefined;
      const stdin = new Writable({
        write(chunk: Buffer, _enc, done) {
          if (gone) return done(gone);
          if (duplex.write(chunk)) return done();
          // A connection that closes while full never drains: the write fails instead of waiting forever.
          const settle = (err?: Error) => {
            duplex.off('drain', onDrain);
            duplex.off('close', onClose);
            done(err);
          };
          const onDrain = () => settle();
          const onClose = () => settle(gone ?? new Error(`exec in ${container} ended`));
          duplex.once('drain', onDrain);
          duplex.once('close', onClose);
        },
        final(done) {
          // Half-close: the process sees EOF on stdin while its output still arrives.
          (duplex as unknown as { end(): void }).end();
          done();
        },
      });
      // A failed write is reported through its callback (and so to the transport); the stream's own 'error' event
      // would otherwise go unhandled.
      stdin.on('error', () => undefined);
      const exit = new Promise<{ code: number; message: string }>((resolve) => {
        let done = false;
        const finish = async () => {
          if (done) return;
          done = true;
          stdout.end();
          stderr.end();
          try {
            const info = await exec.inspect();
            resolve({ code: info.ExitCode ?? -1, message: '' });
          } catch (err) {
            resolve({ code: -1, message: String(err) });
          }
        };
        // finish() never rejects (its failures resolve the exit); the exec's owner awaits `exit`.
        duplex.on('end', () => void finish());
        duplex.on('close', () => {
          gone ??= new Error(`exec in ${container} ended`);
          void finish();
        });
        duplex.on('error', (err: Error) => {
          gone ??= err;
          void finish();
        });
      });
      return { stdin, stdout, stderr, exit, close: () => duplex.destroy() };
    },
  };
}

/** Runs a command to completion and collects its output. */
export async function runToEnd(execer: ContainerExec, command: string[], input?: Buffer | NodeJS.ReadableStream): Promise<{ code: number; output: string; message: string }> {
  const proc = await execer.start(command);
  const chunks: Buffer[] = [];
  proc.stdout.on('data', (c: Buffer) => chunks.push(c));
  proc.stderr.on('data', (c: Buffer) => chunks.push(c));
  if (input instanceof Buffer) proc.stdin.end(input);
  else if (input) (input as NodeJS.ReadableStream).pipe(proc.stdin);
  else proc.stdin.end();
  const r = await proc.exit;
  return { code: r.code, output: Buffer.concat(chunks).toString('utf8'), message: r.message };
}
