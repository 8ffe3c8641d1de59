/**
 * The swap tunnel's wire format, shared by the agent (in the cluster) and devloop (on the developer's machine).
 * One byte stream (a Kubernetes port-forward to the agent's loopback control port) carries every connection the
 * cluster makes to the swapped Service, each as a numbered stream of frames:
 *
 *   [type: u8][stream: u32 BE][length: u32 BE][payload: length bytes]
 *
 * devloop speaks first (HELLO with the tunnel secret); the agent answers WELCOME or REFUSED and closes. Then the
 * agent OPENs a stream per inbound connection (payload: the Service's target port, u16), both sides send DATA and
 * END, and devloop RESETs a stream whose local port refuses (payload: why). PING/PONG keep the tunnel honest: a
 * side that hears nothing for a while treats the tunnel as dead. Only Node's built-ins: the agent is bundled alone.
 */
export const FrameType = {
  HELLO: 1,
  WELCOME: 2,
  REFUSED: 3,
  OPEN: 4,
  DATA: 5,
  END: 6,
  RESET: 7,
  PING: 8,
  PONG: 9,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export interface Frame {
  type: FrameType;
  stream: number;
  payload: Buffer;
}

const HEADER = 9;
/** Larger frames are a protocol error (DATA is split to at most this). */
export const MAX_PAYLOAD = 1 << 20;
const EMPTY = Buffer.alloc(0);

export function encodeFrame(type: FrameType, stream: number, payload: Buffer = EMPTY): Buffer {
  const header = Buffer.allocUnsafe(HEADER);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(stream, 1);
  header.writeUInt32BE(payload.length, 5);
  return payload.length === 0 ? header : Buffer.concat([header, payload]);
}

/** Reassembles frames from the chunks of a byte stream; throws on a malformed one. */
export class FrameDecoder {
  private buffered: Buffer[] = [];
  private size = 0;

  push(chunk: Buffer): Frame[] {
    this.buffered.push(chunk);
    this.size += chunk.length;
    const frames: Frame[] = [];
    if (this.size < HEADER) return frames;
    let data = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered);
    let offset = 0;
    while (data.length - offset >= HEADER) {
      const type = data.readUInt8(offset);
      const length = data.readUInt32BE(offset + 5);
      if (type < FrameType.HELLO || type > FrameType.PONG || length > MAX_PAYLOAD) throw new Error(`malformed tunnel frame (type ${type}, ${length} bytes)`);
      if (data.length - offset < HEADER + length) break;
      frames.push({ type: type as FrameType, stream: data.readUInt32BE(offset + 1), payload: data.subarray(offset + HEADER, offset + HEADER + length) });
      offset += HEADER + length;
    }
    data = data.subarray(offset);
    this.buffered = data.length ? [data] : [];
    this.size = data.length;
    return frames;
  }
}

/** Splits DATA into frames of at most MAX_PAYLOAD bytes. */
export function dataFrames(stream: number, chunk: Buffer): Buffer[] {
  if (chunk.length <= MAX_PAYLOAD) return [encodeFrame(FrameType.DATA, stream, chunk)];
  const out: Buffer[] = [];
  for (let i = 0; i < chunk.length; i += MAX_PAYLOAD) out.push(encodeFrame(FrameType.DATA, stream, chunk.subarray(i, i + MAX_PAYLOAD)));
  return out;
}

export function portPayload(port: number): Buffer {
  const b = Buffer.allocUnsafe(2);
  b.writeUInt16BE(port, 0);
  return b;
}

/** How often each side pings, and how long silence means the tunnel is dead. */
export const PING_INTERVAL_MS = 1_000;
export const SILENCE_LIMIT_MS = 4_000;
