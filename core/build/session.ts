import { createHash, randomUUID } from 'node:crypto';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import type { Socket } from 'node:net';
import path from 'node:path';
import type Dockerode from 'dockerode';
import { listContext, readDockerignore } from './context.js';
import { encodePacket, selectForTransfer, sendDiffCopy, TransferFailed, withLinkTargets, type PacketChannel, type TransferEntry, type TransferReport } from './filesync.js';

/**
 * A BuildKit session with the engine (POST /session, upgraded to HTTP/2 on the same connection): the daemon is the
 * gRPC client, devloop serves the build's directories on it (`moby.filesync.v1.FileSync/DiffCopy`) and answers its
 * health checks. A build names the session (`POST /build?remote=client-session&session=<id>`) and BuildKit fetches
 * the context through it. With the same shared key from build to build, BuildKit keeps the last transfer and asks
 * only for the files that changed.
 */
export interface BuildSession {
  readonly id: string;
  /** Each transfer the daemon made, once it completed. */
  readonly transfers: TransferReport[];
  /** The first transfer that failed (a file vanished, the daemon reported an error), if any. */
  readonly failure: Error | undefined;
  /** Ends the session: the connection closes, calls still open end, and this resolves once they have. */
  close(): Promise<void>;
}

/** The engine could not open a session (too old, or a connection devloop cannot upgrade). */
export class SessionUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'SessionUnavailable';
  }
}

const DIFF_COPY = '/moby.filesync.v1.FileSync/DiffCopy';
const HEALTH_CHECK = '/grpc.health.v1.Health/Check';
/** HealthCheckResponse{status: SERVING}. */
const SERVING = Buffer.from([0x08, 0x01]);
/** The local directories BuildKit's Dockerfile frontend asks a session for. */
const DIRS = ['context', 'dockerfile'] as const;

const GRPC_OK = 0;
const GRPC_UNKNOWN = 2;
const GRPC_NOT_FOUND = 5;
const GRPC_UNIMPLEMENTED = 12;

/**
 * The key BuildKit keeps a context's last transfer under: one per context directory (as the docker CLI does), so
 * every build of it, whichever its Dockerfile, starts from what the last one left.
 */
export function sharedKeyFor(contextDir: string): string {
  return createHash('sha256').update(`devloop:${path.resolve(contextDir)}`).digest('hex').slice(0, 32);
}

/**
 * Opens a session serving `contextDir` as "context" and "dockerfile" (the Dockerfile is read from the context as
 * `dockerfileInContext` names it, so a Dockerfile outside the context is served under the same name as in the tar).
 * Throws SessionUnavailable when the engine does not upgrade the connection.
 */
export async function openBuildSession(
  docker: Dockerode,
  contextDir: string,
  dockerfile: string,
  onTransfer?: (report: TransferReport) => void,
): Promise<BuildSession> {
  const id = randomUUID();
  const socket = await upgradeToSession(docker, {
    'X-Docker-Expose-Session-Uuid': id,
    // Only a label in the daemon's logs; a header value must be plain ASCII.
    'X-Docker-Expose-Session-Name': path.basename(path.resolve(contextDir)).replace(/[^\x20-\x7e]/g, '_'),
    'X-Docker-Expose-Session-Sharedkey': sharedKeyFor(contextDir),
    'X-Docker-Expose-Session-Grpc-Method': [DIFF_COPY, HEALTH_CHECK],
  });

  const transfers: TransferReport[] = [];
  let failure: Error | undefined;
  const calls = new Set<Promise<void>>();
  // The context as listed once for the session: both directories are served from it.
  let listing: Promise<{ files: TransferEntry[]; ownExcludes: string[] }> | undefined;
  const contextFiles = () =>
    (listing ??= (async () => {
      try {
        return {
          files: await withLinkTargets(await listContext(contextDir, dockerfile)),
          ownExcludes: await readDockerignore(contextDir, dockerfile),
        };
      } catch (err) {
        // The context directory itself changed (gone, replaced): said as a transfer of it that failed.
        throw new TransferFailed('.', err);
      }
    })());

  /** One gRPC call: its answer, then its status in the trailers. */
  const serve = async (stream: http2.ServerHttp2Stream, method: string, metadata: Map<string, string[]>): Promise<void> => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
    let status = GRPC_OK;
    let message = '';
    try {
      if (method === HEALTH_CHECK) {
        stream.write(frame(SERVING));
      } else if (method === DIFF_COPY) {
        const dir = metadata.get('dir-name')?.[0] ?? '';
        if (!(DIRS as readonly string[]).includes(dir)) {
          status = GRPC_NOT_FOUND;
          message = `no access allowed to dir "${dir}"`;
        } else {
          const { files, ownExcludes } = await contextFiles();
          const request = {
            includePatterns: metadata.get('include-patterns') ?? [],
            excludePatterns: metadata.get('exclude-patterns') ?? [],
            followPaths: metadata.get('followpaths') ?? [],
            overrideExcludes: metadata.get('override-excludes')?.[0] === 'true',
          };
          const report = await sendDiffCopy(grpcChannel(stream), dir, selectForTransfer(contextDir, files, request, ownExcludes));
          transfers.push(report);
          onTransfer?.(report);
        }
      } else {
        status = GRPC_UNIMPLEMENTED;
        message = `unknown method ${method}`;
      }
    } catch (err) {
      failure ??= err as Error;
      status = GRPC_UNKNOWN;
      message = (err as Error).message;
    }
    if (stream.destroyed || stream.closed) return;
    stream.once('wantTrailers', () => {
      stream.sendTrailers({ 'grpc-status': String(status), ...(message ? { 'grpc-message': encodeURIComponent(message) } : {}) });
    });
    stream.end();
  };

  const server = http2.createServer();
  server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, rawHeaders: string[]) => {
    // A call the daemon resets (it cancelled the build) ends here; a transfer it cut short reports that itself.
    stream.on('error', () => undefined);
    const call: Promise<void> = serve(stream, String(headers[':path'] ?? ''), metadataOf(rawHeaders))
      .catch((err: unknown) => {
        // Answering failed (the daemon left): the build, which owns the session, reports how it ended.
        failure ??= err as Error;
      })
      .finally(() => calls.delete(call));
    calls.add(call);
  });
  // The connection's own failures end the session; the build that uses it sees them as the daemon's.
  server.on('sessionError', () => undefined);
  socket.on('error', () => undefined);
  // The daemon dials HTTP/2 over the upgraded connection: it is served like an accepted one.
  server.emit('connection', socket);

  return {
    id,
    transfers,
    get failure() {
      return failure;
    },
    async close() {
      socket.destroy();
      server.close();
      // A call whose stream was cut by the close ends with it (its channel reports the end).
      await Promise.allSettled([...calls]);
    },
  };
}

/** POST /session with `Upgrade: h2c`; resolves with the connection once the engine switched protocols. */
async function upgradeToSession(docker: Dockerode, headers: Record<string, string | string[]>): Promise<Socket> {
  const modem = docker.modem as unknown as {
    socketPath?: unknown;
    getSocketPath(): Promise<string | undefined> | undefined;
    protocol?: string;
    host?: string;
    port?: number | string;
    version?: string;
    ca?: unknown;
    cert?: unknown;
    key?: unknown;
  };
  if (modem.protocol === 'ssh') throw new SessionUnavailable('the engine is reached over ssh, where devloop opens no session');
  const socketPath = await modem.getSocketPath();
  const client = modem.protocol === 'https' ? https : http;
  const version = modem.version ? `/${modem.version}` : '';
  return new Promise((resolve, reject) => {
    const req = client.request({
      ...(socketPath ? { socketPath } : { host: modem.host, port: modem.port }),
      ...(modem.protocol === 'https' ? { ca: modem.ca, cert: modem.cert, key: modem.key } : {}),
      method: 'POST',
      path: `${version}/session`,
      headers: { Connection: 'Upgrade', Upgrade: 'h2c', 'Content-Length': '0', ...headers },
    } as http.RequestOptions);
    req.on('upgrade', (_res, socket: Socket, head: Buffer) => {
      if (head.length > 0) socket.unshift(head);
      resolve(socket);
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        const said = body.trim().replace(/^\{"message":"(.*)"\}$/s, '$1');
        reject(new SessionUnavailable(`POST /session answered ${res.statusCode}${said ? `: ${said}` : ''}`));
      });
    });
    req.on('error', (err) => reject(new SessionUnavailable(`POST /session failed: ${err.message}`, { cause: err })));
    req.end();
  });
}

/**
 * gRPC metadata from raw HTTP/2 headers: a key sent several times keeps each value. Values arrive as bytes read one
 * character each; the daemon sends paths and patterns as UTF-8.
 */
function metadataOf(rawHeaders: string[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const key = rawHeaders[i]!.toLowerCase();
    if (key.startsWith(':')) continue;
    const values = out.get(key) ?? [];
    values.push(Buffer.from(rawHeaders[i + 1]!, 'latin1').toString('utf8'));
    out.set(key, values);
  }
  return out;
}

/** One gRPC message: compressed flag, 4-byte big-endian length, the message. */
function frame(message: Uint8Array): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt32BE(message.length, 1);
  return Buffer.concat([header, message]);
}

/** A DiffCopy call's packets over its HTTP/2 stream, framed as gRPC messages. */
function grpcChannel(stream: http2.ServerHttp2Stream): PacketChannel {
  let corked = false;
  return {
    async send(packet) {
      if (stream.destroyed || stream.closed) throw new Error('the daemon closed the transfer');
      // Messages sent one after the other without waiting on anything else (a batch of STATs) leave in one write,
      // not one HTTP/2 frame each.
      if (!corked) {
        corked = true;
        stream.cork();
        process.nextTick(() => {
          corked = false;
          stream.uncork();
        });
      }
      if (stream.write(frame(encodePacket(packet)))) return;
      // Flow control: wait until HTTP/2 lets more through, or the call ends.
      await new Promise<void>((resolve, reject) => {
        const settle = (closed: boolean) => {
          stream.off('drain', onDrain);
          stream.off('close', onClose);
          if (closed) reject(new Error('the daemon closed the transfer'));
          else resolve();
        };
        const onDrain = () => settle(false);
        const onClose = () => settle(true);
        stream.on('drain', onDrain);
        stream.on('close', onClose);
      });
    },
    async *receive() {
      // Read through events, not the stream's own iterator: leaving that early destroys the stream (RST_STREAM),
      // and the call still has to send its last packet and its status after the daemon's FIN.
      const chunks: Buffer[] = [];
      let ended = false;
      let error: Error | undefined;
      let wake: (() => void) | undefined;
      const onData = (chunk: Buffer) => {
        chunks.push(chunk);
        wake?.();
      };
      const onEnd = () => {
        ended = true;
        wake?.();
      };
      const onError = (err: Error) => {
        error = err;
        wake?.();
      };
      stream.on('data', onData);
      stream.on('end', onEnd);
      stream.on('close', onEnd);
      stream.on('error', onError);
      try {
        let pending: Buffer = Buffer.alloc(0);
        for (;;) {
          if (chunks.length > 0) {
            pending = Buffer.concat([pending, ...chunks.splice(0)]);
            while (pending.length >= 5) {
              if (pending[0] !== 0) throw new Error('the daemon sent a compressed message, which was not negotiated');
              const length = pending.readUInt32BE(1);
              if (pending.length < 5 + length) break;
              yield pending.subarray(5, 5 + length);
              pending = pending.subarray(5 + length);
            }
            continue;
          }
          if (error) throw error;
          if (ended) return;
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      } finally {
        stream.off('data', onData);
        stream.off('end', onEnd);
        stream.off('close', onEnd);
        stream.off('error', onError);
        // Whatever the daemon still sends (nothing after its FIN) is read and dropped, so the call can end.
        stream.resume();
      }
    },
  };
}
