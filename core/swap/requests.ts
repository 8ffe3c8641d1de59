/**
 * Counts the requests in what a caller sends over one swapped connection (caller → local process), fed chunk by
 * chunk with boundaries anywhere. The dashboard shows requests, not connections: one kept-alive HTTP/1.1
 * connection or one gRPC channel carries many.
 *
 * - HTTP/2 with prior knowledge (h2c, gRPC): recognised by the client preface. Each HEADERS frame that opens a
 *   client stream is one request; a client opens streams with odd ids, each above every id it used before
 *   (RFC 9113 §5.1.1), so trailers (a second HEADERS on the stream) and CONTINUATION frames don't count again.
 * - HTTP/1.x: each request line is one request. The head is read for the body's length (Content-Length or
 *   chunked, extensions and trailers included) and the body skipped to the next request, pipelined ones too. A
 *   request that switches protocols (`Connection: upgrade` with an `Upgrade:` header — WebSocket, h2c — or
 *   CONNECT) is the last one counted: the response (101/200) is not visible from this side, so what follows is
 *   treated as opaque.
 * - Anything else (TLS, plain TCP): one request for the connection, decided from its first bytes.
 *
 * Cheap by design: once counting stops no byte is looked at; bodies and HTTP/2 payloads are skipped by their
 * length, never copied; only a line cut by a chunk boundary (and a cut 9-byte frame header) is buffered, at most
 * MAX_HEAD bytes for a head or a trailer section: beyond it counting stops, as for bytes that break the protocol.
 */

export type RequestProtocol = 'unknown' | 'http1' | 'h2' | 'opaque';

/** The most bytes of a request head (request line and headers), a chunk-size line or a trailer section read. */
export const MAX_HEAD = 64 * 1024;

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const HTTP1_VERSION = Buffer.from('HTTP/1.', 'latin1');
const CONNECT = Buffer.from('CONNECT', 'latin1');
/** Longer than any registered method (UPDATEREDIRECTREF has 17 characters): binary input is rejected early. */
const MAX_METHOD = 32;
const FRAME_HEADER = 9;
const H2_HEADERS = 0x1;
const LF = 0x0a;
const CR = 0x0d;
const SP = 0x20;
const HT = 0x09;

/** RFC 9110 tchar: the bytes of a method or a header name. */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

const Phase = {
  /** Matching the HTTP/2 client preface; a mismatch hands the bytes matched so far to METHOD. */
  PREFACE: 0,
  METHOD: 1,
  TARGET: 2,
  VERSION: 3,
  VERSION_END: 4,
  VERSION_LF: 5,
  HEADER_LINE: 6,
  BODY: 7,
  CHUNK_SIZE: 8,
  CHUNK_DATA: 9,
  CHUNK_END: 10,
  TRAILER: 11,
  FRAME_HEADER: 12,
  FRAME_PAYLOAD: 13,
  STOPPED: 14,
} as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/** The headers of the request being read that decide where it ends. Repeated fields are joined with commas. */
interface FramingFields {
  contentLength?: string;
  transferEncoding?: string;
  connection?: string;
  upgrade: boolean;
}
type FramingField = 'contentLength' | 'transferEncoding' | 'connection';

const FRAMING_HEADERS: Record<string, FramingField | 'upgrade'> = {
  'content-length': 'contentLength',
  'transfer-encoding': 'transferEncoding',
  connection: 'connection',
  upgrade: 'upgrade',
};
const FRAMING_NAME_LENGTHS = new Set(Object.keys(FRAMING_HEADERS).map((name) => name.length));

export class RequestCounter {
  private currentProtocol: RequestProtocol = 'unknown';
  private total = 0;
  private phase: Phase = Phase.PREFACE;
  private seenBytes = false;

  private prefaceMatched = 0;
  private methodLength = 0;
  private connectMatched = 0;
  private targetLength = 0;
  private versionMatched = 0;
  /** Bytes read of the current head, chunk-size line or trailer section (capped at MAX_HEAD). */
  private sectionBytes = 0;
  private fields: FramingFields = { upgrade: false };
  private lastField: FramingField | undefined;
  /** Bytes left of a body, a chunk or an HTTP/2 frame payload. */
  private remaining = 0;
  /** The start of a line a chunk boundary cut. */
  private partialLine: Buffer[] = [];
  private partialLineBytes = 0;

  private frameHeader: Buffer | undefined;
  private frameHeaderFilled = 0;
  private highestStream = 0;

  /** What the connection was recognised as; 'opaque' counts one request for the whole connection. */
  get protocol(): RequestProtocol {
    return this.currentProtocol;
  }

  /** Requests counted so far. */
  get requests(): number {
    return this.total;
  }

  /** True once no more requests can be seen on this connection (opaque, upgraded, or bytes that break the protocol). */
  get stopped(): boolean {
    return this.phase === Phase.STOPPED;
  }

  /** Bytes held between chunks (a cut line or frame header), for the memory a connection costs. */
  get buffered(): number {
    return this.partialLineBytes + (this.phase === Phase.FRAME_HEADER ? this.frameHeaderFilled : 0);
  }

  /** Reads the next chunk the caller sent; returns the requests that began in it. */
  push(chunk: Buffer): number {
    if (this.phase === Phase.STOPPED || chunk.length === 0) return 0;
    this.seenBytes = true;
    const before = this.total;
    this.read(chunk);
    return this.total - before;
  }

  /**
   * The caller finished sending. A connection that sent bytes too few to recognise (a partial request line) is
   * opaque: its one request is returned here.
   */
  end(): number {
    const before = this.total;
    if (this.seenBytes) this.stop();
    this.phase = Phase.STOPPED;
    return this.total - before;
  }

  private read(chunk: Buffer): void {
    let at = 0;
    while (at < chunk.length && this.phase !== Phase.STOPPED) {
      switch (this.phase) {
        case Phase.PREFACE:
          at = this.matchPreface(chunk, at);
          break;
        case Phase.METHOD:
        case Phase.TARGET:
        case Phase.VERSION:
        case Phase.VERSION_END:
        case Phase.VERSION_LF:
          at = this.readRequestLine(chunk, at);
          break;
        case Phase.BODY:
        case Phase.CHUNK_DATA:
        case Phase.FRAME_PAYLOAD:
          at = this.skip(chunk, at);
          break;
        case Phase.FRAME_HEADER:
          at = this.readFrameHeader(chunk, at);
          break;
        default:
          at = this.readLine(chunk, at);
      }
    }
  }

  /** Undecided bytes become one opaque request; a recognised connection just stops being read. */
  private stop(): void {
    if (this.currentProtocol === 'unknown') {
      this.currentProtocol = 'opaque';
      this.total++;
    }
    this.phase = Phase.STOPPED;
    this.partialLine = [];
    this.partialLineBytes = 0;
    this.frameHeader = undefined;
  }

  private matchPreface(chunk: Buffer, at: number): number {
    const available = Math.min(chunk.length - at, PREFACE.length - this.prefaceMatched);
    let i = 0;
    while (i < available && chunk[at + i] === PREFACE[this.prefaceMatched + i]) i++;
    if (i === available) {
      this.prefaceMatched += i;
      if (this.prefaceMatched === PREFACE.length) {
        this.currentProtocol = 'h2';
        this.frameHeader = Buffer.alloc(FRAME_HEADER);
        this.phase = Phase.FRAME_HEADER;
      }
      return at + i;
    }
    // Not HTTP/2: what matched ("PRI * HTTP/…" so far) is the start of a request line, read as such.
    const matched = PREFACE.subarray(0, this.prefaceMatched + i);
    this.startRequest();
    if (matched.length > 0) this.read(matched);
    return at + i;
  }

  private startRequest(): void {
    this.phase = Phase.METHOD;
    this.methodLength = 0;
    this.connectMatched = 0;
    this.sectionBytes = 0;
    this.fields = { upgrade: false };
    this.lastField = undefined;
  }

  /** The request line, byte by byte: `METHOD SP target SP HTTP/1.d CRLF` (empty lines before it are skipped). */
  private readRequestLine(chunk: Buffer, start: number): number {
    let at = start;
    for (; at < chunk.length; at++) {
      if (++this.sectionBytes > MAX_HEAD) {
        this.stop();
        return at;
      }
      const byte = chunk[at]!;
      switch (this.phase) {
        case Phase.METHOD:
          if (TCHAR[byte] && this.methodLength < MAX_METHOD) {
            if (this.connectMatched === this.methodLength && byte === CONNECT[this.methodLength]) this.connectMatched++;
            this.methodLength++;
          } else if (byte === SP && this.methodLength > 0) {
            this.phase = Phase.TARGET;
            this.targetLength = 0;
          } else if ((byte === CR || byte === LF) && this.methodLength === 0) {
            // RFC 9112 §2.2: empty lines before a request line are ignored.
          } else {
            this.stop();
            return at;
          }
          break;
        case Phase.TARGET:
          if (byte === SP && this.targetLength > 0) {
            this.phase = Phase.VERSION;
            this.versionMatched = 0;
          } else if (byte > SP && byte !== 0x7f) {
            this.targetLength++;
          } else {
            this.stop();
            return at;
          }
          break;
        case Phase.VERSION:
          if (this.versionMatched < HTTP1_VERSION.length && byte === HTTP1_VERSION[this.versionMatched]) {
            this.versionMatched++;
          } else if (this.versionMatched === HTTP1_VERSION.length && byte >= 0x30 && byte <= 0x39) {
            this.phase = Phase.VERSION_END;
          } else {
            this.stop();
            return at;
          }
          break;
        case Phase.VERSION_END:
        case Phase.VERSION_LF:
          if (byte === CR && this.phase === Phase.VERSION_END) {
            this.phase = Phase.VERSION_LF;
          } else if (byte === LF) {
            this.currentProtocol = 'http1';
            this.total++;
            this.phase = Phase.HEADER_LINE;
            return at + 1;
          } else {
            this.stop();
            return at;
          }
          break;
      }
    }
    return at;
  }

  private skip(chunk: Buffer, at: number): number {
    const skipped = Math.min(this.remaining, chunk.length - at);
    this.remaining -= skipped;
    if (this.remaining === 0) {
      if (this.phase === Phase.BODY) this.startRequest();
      else if (this.phase === Phase.CHUNK_DATA) this.startSection(Phase.CHUNK_END);
      else this.phase = Phase.FRAME_HEADER;
    }
    return at + skipped;
  }

  private startSection(phase: Phase): void {
    this.phase = phase;
    this.sectionBytes = 0;
  }

  private readFrameHeader(chunk: Buffer, at: number): number {
    let header: Buffer;
    let next: number;
    if (this.frameHeaderFilled === 0 && chunk.length - at >= FRAME_HEADER) {
      header = chunk.subarray(at, at + FRAME_HEADER);
      next = at + FRAME_HEADER;
    } else {
      const take = Math.min(FRAME_HEADER - this.frameHeaderFilled, chunk.length - at);
      chunk.copy(this.frameHeader!, this.frameHeaderFilled, at, at + take);
      this.frameHeaderFilled += take;
      if (this.frameHeaderFilled < FRAME_HEADER) return at + take;
      this.frameHeaderFilled = 0;
      header = this.frameHeader!;
      next = at + take;
    }
    const length = header.readUIntBE(0, 3);
    const stream = header.readUInt32BE(5) & 0x7fffffff;
    if (header[3] === H2_HEADERS && stream % 2 === 1 && stream > this.highestStream) {
      this.highestStream = stream;
      this.total++;
    }
    this.remaining = length;
    if (length > 0) this.phase = Phase.FRAME_PAYLOAD;
    return next;
  }

  /** A header, chunk-size, chunk-end or trailer line; only a line a chunk boundary cuts is copied. */
  private readLine(chunk: Buffer, at: number): number {
    const lf = chunk.indexOf(LF, at);
    const end = lf === -1 ? chunk.length : lf + 1;
    this.sectionBytes += end - at;
    if (this.sectionBytes > MAX_HEAD) {
      this.stop();
      return end;
    }
    if (lf === -1) {
      const rest = Buffer.from(chunk.subarray(at));
      this.partialLine.push(rest);
      this.partialLineBytes += rest.length;
      return end;
    }
    let line = chunk;
    let from = at;
    let to = lf;
    if (this.partialLineBytes > 0) {
      line = Buffer.concat([...this.partialLine, chunk.subarray(at, lf)]);
      this.partialLine = [];
      this.partialLineBytes = 0;
      from = 0;
      to = line.length;
    }
    if (to > from && line[to - 1] === CR) to--;
    this.onLine(line, from, to);
    return end;
  }

  /** The line is `buffer[from, to)`, without its CRLF: lines are read in place, not sliced. */
  private onLine(buffer: Buffer, from: number, to: number): void {
    switch (this.phase) {
      case Phase.HEADER_LINE:
        if (to === from) this.endOfHead();
        else this.onHeader(buffer, from, to);
        return;
      case Phase.CHUNK_SIZE:
        this.onChunkSize(buffer.toString('latin1', from, to));
        return;
      case Phase.CHUNK_END:
        if (to === from) this.startSection(Phase.CHUNK_SIZE);
        else this.stop();
        return;
      case Phase.TRAILER:
        if (to === from) this.startRequest();
        return;
    }
  }

  private onHeader(buffer: Buffer, from: number, to: number): void {
    if (buffer[from] === SP || buffer[from] === HT) {
      // obs-fold (RFC 9112 §5.2): the line continues the previous field's value.
      if (this.lastField) this.fields[this.lastField] += ' ' + buffer.toString('latin1', from, to).trim();
      return;
    }
    let colon = from;
    while (colon < to && TCHAR[buffer[colon]!]) colon++;
    if (colon === from || colon === to || buffer[colon] !== 0x3a) return this.stop();
    this.lastField = undefined;
    // Most headers are none of the four: their names are not even decoded.
    if (!FRAMING_NAME_LENGTHS.has(colon - from)) return;
    const field = FRAMING_HEADERS[buffer.toString('latin1', from, colon).toLowerCase()];
    if (field === undefined) return;
    if (field === 'upgrade') {
      this.fields.upgrade = true;
      return;
    }
    const value = buffer.toString('latin1', colon + 1, to).trim();
    const previous = this.fields[field];
    this.fields[field] = previous === undefined ? value : `${previous},${value}`;
    this.lastField = field;
  }

  /** Where the request's body ends (RFC 9112 §6.3), or that the connection leaves HTTP/1 after it. */
  private endOfHead(): void {
    const { contentLength, transferEncoding, connection, upgrade } = this.fields;
    const isConnect = this.connectMatched === CONNECT.length && this.methodLength === CONNECT.length;
    if (isConnect || (upgrade && connection !== undefined && listTokens(connection).includes('upgrade'))) return this.stop();
    if (transferEncoding !== undefined) {
      // A request whose last coding is not chunked has no length a reader can find: the server answers 400 and closes.
      if (listTokens(transferEncoding).at(-1) === 'chunked') this.startSection(Phase.CHUNK_SIZE);
      else this.stop();
      return;
    }
    if (contentLength !== undefined) {
      const values = new Set(contentLength.split(',').map((v) => v.trim()));
      const [value] = values;
      if (values.size !== 1 || !/^\d{1,15}$/.test(value!)) return this.stop();
      this.remaining = Number(value);
      if (this.remaining > 0) {
        this.phase = Phase.BODY;
        return;
      }
    }
    this.startRequest();
  }

  /** `1a;ext=value` — hexadecimal size, optional whitespace and extensions. */
  private onChunkSize(line: string): void {
    const match = /^([0-9a-fA-F]{1,12})[ \t]*(?:;.*)?$/.exec(line);
    if (!match) return this.stop();
    this.remaining = parseInt(match[1]!, 16);
    if (this.remaining === 0) this.startSection(Phase.TRAILER);
    else this.phase = Phase.CHUNK_DATA;
  }
}

function listTokens(value: string): string[] {
  return value
    .split(',')
    .map((token) => token.trim().toLowerCase())
    .filter((token) => token.length > 0);
}
