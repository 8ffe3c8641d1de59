import { describe, expect, it } from 'vitest';
import { UserError } from '../errors.js';
import { dataFrames, encodeFrame, FrameDecoder, FrameType, MAX_PAYLOAD } from './agent/protocol.js';
import { expandReferences, toDotenv } from './env.js';
import { isExpired, microTime, type SwapRecord } from './lease.js';
import { parsePortRequests } from './resolve.js';

describe('the tunnel protocol', () => {
  it('reassembles frames split at any byte', () => {
    const bytes = Buffer.concat([
      encodeFrame(FrameType.HELLO, 0, Buffer.from('secret')),
      encodeFrame(FrameType.OPEN, 7, Buffer.from([0x1f, 0x90])),
      encodeFrame(FrameType.END, 7),
    ]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const decoder = new FrameDecoder();
      const frames = [...decoder.push(bytes.subarray(0, cut)), ...decoder.push(bytes.subarray(cut))];
      expect(frames.map((f) => [f.type, f.stream, f.payload.toString('hex')])).toEqual([
        [FrameType.HELLO, 0, Buffer.from('secret').toString('hex')],
        [FrameType.OPEN, 7, '1f90'],
        [FrameType.END, 7, ''],
      ]);
    }
  });

  it('splits large data and refuses malformed frames', () => {
    const big = Buffer.alloc(MAX_PAYLOAD * 2 + 5, 1);
    const frames = dataFrames(3, big);
    expect(frames).toHaveLength(3);
    const decoded = new FrameDecoder().push(Buffer.concat(frames));
    expect(Buffer.concat(decoded.map((f) => f.payload)).equals(big)).toBe(true);
    expect(() => new FrameDecoder().push(Buffer.from([99, 0, 0, 0, 0, 0, 0, 0, 0]))).toThrow(/malformed/);
  });
});

describe('swap inputs and records', () => {
  it('parses --port values and refuses bad ones as user errors', () => {
    expect(parsePortRequests(['3000:8080', '3001:http', '4000'])).toEqual([{ local: 3000, remote: '8080' }, { local: 3001, remote: 'http' }, { local: 4000 }]);
    for (const bad of ['0:80', '70000:80', 'x', '3000:', ':80']) expect(() => parsePortRequests([bad])).toThrow(UserError);
  });

  it('writes Kubernetes MicroTime with six fractional digits', () => {
    expect(microTime(new Date('2026-11-30T11:00:00.123Z'))).toBe('2026-11-30T11:00:00.123000Z');
  });

  it('counts a lease as expired only past its end and the clock margin', () => {
    const r = { expiresAt: '2026-11-30T11:00:15.000Z' } as SwapRecord;
    const end = Date.parse(r.expiresAt!);
    expect(isExpired(r, end + 4_000)).toBe(false);
    expect(isExpired(r, end + 6_000)).toBe(true);
    expect(isExpired({} as SwapRecord, end)).toBe(true);
  });

  it('expands $(VAR) as the kubelet does and escapes dotenv values', () => {
    expect(expandReferences('$(A)-$(B)-$$(A)-$(MISSING)', { A: 'a', B: 'b' })).toBe('a-b-$(A)-$(MISSING)');
    expect(toDotenv({ A: 'x "y" $z\nw\\' })).toBe('A="x \\"y\\" \\$z\\nw\\\\"\n');
  });
});
