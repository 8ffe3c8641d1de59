import { rmSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listContext } from './context.js';
import {
  comparePaths,
  decodePacket,
  encodePacket,
  goFileMode,
  goPathMatch,
  PacketType,
  selectForTransfer,
  sendDiffCopy,
  TransferFailed,
  withLinkTargets,
  type Packet,
  type PacketChannel,
} from './filesync.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-filesync-'));
  await mkdir(path.join(dir, 'sub', 'deep'), { recursive: true });
  await mkdir(path.join(dir, 'logs'));
  await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
  await writeFile(path.join(dir, '.dockerignore'), 'logs\n!logs/keep.txt\nsecret.txt\n');
  await writeFile(path.join(dir, 'a.txt'), 'aaa');
  await writeFile(path.join(dir, 'a-b.txt'), 'ab');
  await writeFile(path.join(dir, 'secret.txt'), 'no');
  await writeFile(path.join(dir, 'sub', 'deep', 'c.txt'), 'c'.repeat(70_000));
  await writeFile(path.join(dir, 'logs', 'keep.txt'), 'kept');
  await writeFile(path.join(dir, 'logs', 'drop.txt'), 'dropped');
  await symlink('sub/deep/c.txt', path.join(dir, 'link'));
  await utimes(path.join(dir, 'a.txt'), new Date('2020-01-02T03:04:05.678Z'), new Date('2020-01-02T03:04:05.678Z'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const everything = { includePatterns: [], excludePatterns: [], followPaths: [], overrideExcludes: false };

describe('selectForTransfer', () => {
  it('sends what the tar sends, in walk order, with the directory an exception reaches into before its file', async () => {
    const files = await withLinkTargets(await listContext(dir));
    const names = selectForTransfer(dir, files, everything, ['logs']).map((f) => f.name);
    expect(names).toEqual(['.dockerignore', 'Dockerfile', 'a-b.txt', 'a.txt', 'link', 'logs', 'logs/keep.txt', 'sub', 'sub/deep', 'sub/deep/c.txt']);
    // Component by component: "sub/deep" sorts before "sub-x" although '-' sorts before '/' as characters.
    expect(['sub-x', 'sub/deep', 'sub'].sort(comparePaths)).toEqual(['sub', 'sub/deep', 'sub-x']);
  });

  it('narrows to follow paths (a followed symlink brings its target) and include patterns, parents included', async () => {
    const files = await withLinkTargets(await listContext(dir));
    expect(selectForTransfer(dir, files, { ...everything, followPaths: ['Dockerfile', 'Dockerfile.dockerignore'] }, []).map((f) => f.name)).toEqual(['Dockerfile']);
    expect(selectForTransfer(dir, files, { ...everything, followPaths: ['link'] }, []).map((f) => f.name)).toEqual(['link', 'sub', 'sub/deep', 'sub/deep/c.txt']);
    expect(selectForTransfer(dir, files, { ...everything, includePatterns: ['sub'] }, []).map((f) => f.name)).toEqual(['sub', 'sub/deep', 'sub/deep/c.txt']);
    expect(selectForTransfer(dir, files, { ...everything, includePatterns: ['*.txt'] }, []).map((f) => f.name)).toEqual(['a-b.txt', 'a.txt']);
    // A directory .dockerignore leaves out, named by a pattern: what an exception keeps of it is sent.
    expect(selectForTransfer(dir, files, { ...everything, includePatterns: ['logs'] }, ['logs']).map((f) => f.name)).toEqual(['logs', 'logs/keep.txt']);
  });

  it("applies the request's excludes only where the directory has none of its own, or when told to", async () => {
    const files = await withLinkTargets(await listContext(dir));
    const request = { ...everything, excludePatterns: ['sub'] };
    expect(selectForTransfer(dir, files, request, ['logs']).map((f) => f.name)).toContain('sub/deep/c.txt');
    expect(selectForTransfer(dir, files, { ...request, overrideExcludes: true }, ['logs']).map((f) => f.name)).not.toContain('sub/deep/c.txt');
    expect(selectForTransfer(dir, files, request, []).map((f) => f.name)).not.toContain('sub');
  });
});

describe('goPathMatch and goFileMode', () => {
  it("matches as Go's path.Match: * and ? stop at a slash, classes and escapes", () => {
    expect(goPathMatch('*.go', 'main.go')).toBe(true);
    expect(goPathMatch('*.go', 'cmd/main.go')).toBe(false);
    expect(goPathMatch('cmd/*/x', 'cmd/a/x')).toBe(true);
    expect(goPathMatch('file?.txt', 'file1.txt')).toBe(true);
    expect(goPathMatch('[a-c]x', 'bx')).toBe(true);
    expect(goPathMatch('[^a-c]x', 'bx')).toBe(false);
    expect(goPathMatch('a\\*b', 'a*b')).toBe(true);
    expect(goPathMatch('a\\*b', 'axb')).toBe(false);
    expect(goPathMatch('a.b', 'axb')).toBe(false);
  });

  it("puts the file type and special bits where Go's os.FileMode has them", () => {
    expect(goFileMode(0o100644)).toBe(0o644);
    expect(goFileMode(0o040755)).toBe((0x80000000 | 0o755) >>> 0);
    expect(goFileMode(0o120777)).toBe((1 << 27) | 0o777);
    expect(goFileMode(0o104755)).toBe((1 << 23) | 0o755);
  });
});

/**
 * A test double of the daemon's side of one DiffCopy call (the real daemon is in session.integration.test.ts):
 * it records every packet, requests the given files once the list has ended, then sends FIN.
 */
function daemonDouble(request: (stats: string[]) => number[]): { channel: PacketChannel; received: Packet[] } {
  const received: Packet[] = [];
  const outbox: Uint8Array[] = [];
  let wake: (() => void) | undefined;
  const push = (p: Packet) => {
    outbox.push(encodePacket(p));
    wake?.();
  };
  const stats: string[] = [];
  let pendingData = 0;
  return {
    received,
    channel: {
      async send(packet) {
        const decoded = decodePacket(encodePacket(packet));
        received.push(packet);
        if (decoded.type === PacketType.STAT) {
          if (decoded.stat) stats.push(decoded.stat.path);
          else {
            const ids = request(stats);
            pendingData = ids.length;
            for (const id of ids) push({ type: PacketType.REQ, ID: id });
            if (ids.length === 0) push({ type: PacketType.FIN });
          }
        } else if (decoded.type === PacketType.DATA && decoded.data.length === 0 && --pendingData === 0) {
          push({ type: PacketType.FIN });
        } else if (decoded.type === PacketType.FIN || decoded.type === PacketType.ERR) {
          // The daemon ends the call after the sender's FIN, or on its error.
          outbox.push(new Uint8Array(0));
          wake?.();
        }
      },
      async *receive() {
        for (;;) {
          while (outbox.length > 0) {
            const next = outbox.shift()!;
            if (next.length === 0) return;
            yield next;
          }
          await new Promise<void>((resolve) => (wake = resolve));
        }
      },
    },
  };
}

describe('sendDiffCopy', () => {
  it('sends the list, then only the files asked for, in chunks ending with an empty DATA, and FIN', async () => {
    const files = selectForTransfer(dir, await withLinkTargets(await listContext(dir)), everything, ['logs']);
    const { channel, received } = daemonDouble((stats) => [stats.indexOf('sub/deep/c.txt')]);
    const report = await sendDiffCopy(channel, 'context', files);
    expect(report).toEqual({ dir: 'context', offered: files.length, requested: ['sub/deep/c.txt'], bytes: 70_000 });
    const stats = received.filter((p) => p.type === PacketType.STAT);
    expect(stats.at(-1)!.stat).toBeUndefined();
    const a = stats.find((p) => p.stat?.path === 'a.txt')!.stat!;
    // The file's own modification time, in nanoseconds since the epoch, as a 64-bit integer.
    const mtimeNs = (await lstat(path.join(dir, 'a.txt'), { bigint: true })).mtimeNs;
    expect(mtimeNs / 1_000_000_000n).toBe(BigInt(Date.parse('2020-01-02T03:04:05Z') / 1000));
    expect(mtimeNs % 1_000_000_000n).not.toBe(0n);
    expect(BigInt(a.modTime.high) * 2n ** 32n + BigInt(a.modTime.low)).toBe(mtimeNs);
    expect(a.size).toBe(3);
    expect(stats.find((p) => p.stat?.path === 'link')!.stat!.linkname).toBe('sub/deep/c.txt');
    const data = received.filter((p) => p.type === PacketType.DATA);
    expect(data.map((p) => p.data?.length ?? 0)).toEqual([32_768, 32_768, 70_000 - 65_536, 0]);
    expect(received.at(-1)!.type).toBe(PacketType.FIN);
  });

  it('fails, telling the daemon, when a requested file vanished', async () => {
    await writeFile(path.join(dir, 'gone.txt'), 'soon gone');
    const files = selectForTransfer(dir, await withLinkTargets(await listContext(dir)), everything, ['logs']);
    const { channel, received } = daemonDouble((stats) => {
      rmSync(path.join(dir, 'gone.txt'));
      return [stats.indexOf('gone.txt')];
    });
    const err = await sendDiffCopy(channel, 'context', files).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TransferFailed);
    expect((err as TransferFailed).file).toBe('gone.txt');
    expect(received.some((p) => p.type === PacketType.ERR)).toBe(true);
  });
});
