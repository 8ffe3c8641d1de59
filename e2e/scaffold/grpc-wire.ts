import http2 from 'node:http2';

/**
 * A minimal gRPC client over node:http2 (h2c): one unary call with a raw protobuf message. Enough to call
 * grpc.health.v1.Health/Check and the template's example API without generated code.
 */
export async function grpcUnary(
  port: number,
  method: string,
  message: Buffer,
  metadata: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<{ status: number; statusMessage: string; reply: Buffer | undefined }> {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  try {
    return await new Promise((resolve, reject) => {
      session.once('error', reject);
      const req = session.request({
        ':method': 'POST',
        ':path': method,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${timeoutMs}m`,
        ...metadata,
      });
      const frame = Buffer.alloc(5 + message.length);
      frame.writeUInt32BE(message.length, 1); // byte 0: not compressed
      message.copy(frame, 5);
      const chunks: Buffer[] = [];
      let headers: http2.IncomingHttpHeaders = {};
      let trailers: http2.IncomingHttpHeaders = {};
      req.on('response', (h) => (headers = h));
      req.on('trailers', (t) => (trailers = t));
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('error', reject);
      const timer = setTimeout(() => {
        req.close(http2.constants.NGHTTP2_CANCEL);
        reject(new Error(`gRPC call ${method} got no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      req.on('end', () => {
        clearTimeout(timer);
        const body = Buffer.concat(chunks);
        // A trailers-only answer (an error) carries grpc-status in the headers.
        const status = Number(trailers['grpc-status'] ?? headers['grpc-status'] ?? -1);
        const statusMessage = String(trailers['grpc-message'] ?? headers['grpc-message'] ?? '');
        resolve({ status, statusMessage, reply: body.length >= 5 ? body.subarray(5, 5 + body.readUInt32BE(1)) : undefined });
      });
      req.end(frame);
    });
  } finally {
    session.close();
  }
}

/** Encodes string fields of a protobuf message (field number → value; short values only). */
export function encodeStrings(fields: Record<number, string>): Buffer {
  const parts: Buffer[] = [];
  for (const [n, v] of Object.entries(fields)) {
    const bytes = Buffer.from(v);
    if (bytes.length > 127) throw new Error('encodeStrings handles values up to 127 bytes');
    parts.push(Buffer.from([(Number(n) << 3) | 2, bytes.length]), bytes);
  }
  return Buffer.concat(parts);
}

/** Decodes a protobuf message of varint and string fields (small messages only). */
export function decodeFields(buf: Buffer): Record<number, string | number> {
  const out: Record<number, string | number> = {};
  let i = 0;
  const varint = () => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = buf[i++]!;
      v |= (b & 0x7f) << shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  while (i < buf.length) {
    const key = varint();
    const field = key >> 3;
    if ((key & 7) === 0) out[field] = varint();
    else if ((key & 7) === 2) {
      const len = varint();
      out[field] = buf.subarray(i, i + len).toString('utf8');
      i += len;
    } else throw new Error(`unsupported wire type ${key & 7}`);
  }
  return out;
}
