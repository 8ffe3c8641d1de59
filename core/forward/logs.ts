import { PassThrough, Writable } from 'node:stream';
import type Dockerode from 'dockerode';
import type { Kube } from '../deploy/kube.js';

export interface LogFollow {
  close(): void;
  /** Settles when the stream has ended (the container stopped, the pod went away, or close()). */
  done: Promise<void>;
}

/** A writable that calls `onLine` per complete line (a trailing partial line is flushed at the end). */
function lineSink(onLine: (line: string) => void): Writable {
  let partial = '';
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      partial += chunk.toString('utf8');
      let i: number;
      while ((i = partial.indexOf('\n')) >= 0) {
        onLine(partial.slice(0, i).replace(/\r$/, ''));
        partial = partial.slice(i + 1);
      }
      done();
    },
    final(done) {
      if (partial) onLine(partial);
      partial = '';
      done();
    },
  });
}

/**
 * Follows one container instance's log through the API server. `fromStart` shows everything the instance printed
 * (a container that started while devloop watched); otherwise only lines from now on.
 */
export async function followKubeLog(
  kube: Kube,
  namespace: string,
  pod: string,
  container: string,
  fromStart: boolean,
  onLine: (line: string) => void,
): Promise<LogFollow> {
  const log = new kube.lib.Log(kube.config);
  const sink = lineSink(onLine);
  // The client pipes the response into the sink without listening for errors on it: a dropped connection or our
  // own abort would otherwise be an unhandled 'error' event.
  sink.on('pipe', (source: NodeJS.ReadableStream) => {
    source.on('error', () => sink.end());
  });
  const controller = await log.log(namespace, pod, container, sink, {
    follow: true,
    ...(fromStart ? {} : { sinceSeconds: 1 }),
  });
  const done = new Promise<void>((resolve) => sink.on('finish', () => resolve()));
  return { close: () => controller.abort(), done };
}

/** Follows a local Docker container's output (stdout and stderr) from `sinceSeconds` (Unix time). */
export async function followDockerLog(docker: Dockerode, container: string, sinceSeconds: number, onLine: (line: string) => void): Promise<LogFollow> {
  const stream = (await docker.getContainer(container).logs({ follow: true, stdout: true, stderr: true, since: sinceSeconds })) as unknown as NodeJS.ReadableStream & {
    destroy(): void;
  };
  const out = new PassThrough();
  docker.modem.demuxStream(stream, out, out);
  const sink = lineSink(onLine);
  out.pipe(sink);
  stream.on('end', () => out.end());
  stream.on('close', () => out.end());
  // A connection the engine drops (it restarts, say) ends the log like any other end, not as an unhandled error.
  stream.on('error', () => out.end());
  const done = new Promise<void>((resolve) => sink.on('finish', () => resolve()));
  return { close: () => stream.destroy(), done };
}
