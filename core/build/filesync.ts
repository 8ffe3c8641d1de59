import type { BigIntStats } from 'node:fs';
import { createReadStream } from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import path from 'node:path';
import ignoreModule from '@balena/dockerignore';
import protobuf from 'protobufjs';
import type { ContextFile } from './context.js';

/**
 * The sending side of BuildKit's file transfer (`moby.filesync.v1.FileSync/DiffCopy`, the fsutil protocol): the
 * sender lists every path it offers (a STAT packet each, in walk order, then an empty STAT); the daemon compares the
 * list with what it kept from the last transfer under the same shared key and REQuests only the files that differ
 * (by size, modification time, mode or link target); each is sent as DATA packets and an empty DATA; FIN both ways
 * ends the transfer.
 */
const FSUTIL_PROTO = `
syntax = "proto3";
package fsutil.types;
message Packet {
  enum PacketType {
    PACKET_STAT = 0;
    PACKET_REQ = 1;
    PACKET_DATA = 2;
    PACKET_FIN = 3;
    PACKET_ERR = 4;
  }
  PacketType type = 1;
  Stat stat = 2;
  uint32 ID = 3;
  bytes data = 4;
}
message Stat {
  string path = 1;
  uint32 mode = 2;
  uint32 uid = 3;
  uint32 gid = 4;
  int64 size = 5;
  int64 modTime = 6;
  string linkname = 7;
  int64 devmajor = 8;
  int64 devminor = 9;
  map<string, bytes> xattrs = 10;
}
`;

export const PacketType = { STAT: 0, REQ: 1, DATA: 2, FIN: 3, ERR: 4 } as const;

/** An int64 as protobufjs writes it without the `long` package. */
interface LongBits {
  low: number;
  high: number;
}

export interface WireStat {
  path: string;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  modTime: LongBits;
  linkname: string;
}

export interface Packet {
  type: number;
  stat?: WireStat;
  ID?: number;
  data?: Uint8Array;
}

let packetType: protobuf.Type | undefined;
function packets(): protobuf.Type {
  return (packetType ??= protobuf.parse(FSUTIL_PROTO).root.lookupType('fsutil.types.Packet'));
}

export function encodePacket(p: Packet): Buffer {
  return Buffer.from(packets().encode(p).finish());
}

export function decodePacket(bytes: Uint8Array): { type: number; ID: number; data: Buffer; stat?: { path: string } } {
  const raw = packets().decode(bytes) as unknown as { type?: number; ID?: number; data?: Uint8Array; stat?: { path: string } };
  return { type: raw.type ?? 0, ID: raw.ID ?? 0, data: Buffer.from(raw.data ?? []), ...(raw.stat ? { stat: raw.stat } : {}) };
}

// Go's os.FileMode bits, which fsutil puts on the wire in place of the Unix mode's type and special bits.
const GO_MODE_DIR = 0x80000000;
const GO_MODE_SYMLINK = 1 << 27;
const GO_MODE_SETUID = 1 << 23;
const GO_MODE_SETGID = 1 << 22;
const GO_MODE_STICKY = 1 << 20;

/** A Unix st_mode as Go's os.FileMode (what fsutil sends). */
export function goFileMode(unixMode: number): number {
  let mode = unixMode & 0o777;
  const type = unixMode & 0o170000;
  if (type === 0o040000) mode |= GO_MODE_DIR;
  else if (type === 0o120000) mode |= GO_MODE_SYMLINK;
  if (unixMode & 0o4000) mode |= GO_MODE_SETUID;
  if (unixMode & 0o2000) mode |= GO_MODE_SETGID;
  if (unixMode & 0o1000) mode |= GO_MODE_STICKY;
  return mode >>> 0;
}

function longBits(value: bigint): LongBits {
  const unsigned = BigInt.asUintN(64, value);
  return { low: Number(unsigned & 0xffffffffn), high: Number(unsigned >> 32n) };
}

/**
 * One path's STAT, as the build context's tar carries it: its own mode and modification time (to the nanosecond,
 * as the docker CLI sends it), owner 0:0 (the docker CLI resets owners too).
 */
export function wireStat(name: string, st: BigIntStats, linkname = ''): WireStat {
  const isFile = (Number(st.mode) & 0o170000) === 0o100000;
  return {
    path: name,
    mode: goFileMode(Number(st.mode)),
    uid: 0,
    gid: 0,
    size: isFile ? Number(st.size) : 0,
    modTime: longBits(st.mtimeNs),
    linkname,
  };
}

// The package is CommonJS with a default export function.
const createIgnore = ignoreModule as unknown as (opts?: { ignorecase?: boolean }) => {
  add(patterns: string | string[]): unknown;
  ignores(p: string): boolean;
};

/** What the daemon asks of one transfer (gRPC metadata of the DiffCopy call). */
export interface TransferRequest {
  includePatterns: string[];
  excludePatterns: string[];
  followPaths: string[];
  /** The request's exclude patterns replace the directory's own (`.dockerignore`). */
  overrideExcludes: boolean;
}

/**
 * Go's path.Match (what fsutil matches include patterns with): `*` and `?` stop at `/`, `[…]` classes (`^`
 * negates), `\` escapes. An invalid pattern matches nothing.
 */
export function goPathMatch(pattern: string, name: string): boolean {
  return goPathPattern(pattern)?.test(name) ?? false;
}

/** The RegExp goPathMatch matches with; undefined for an invalid pattern. */
function goPathPattern(pattern: string): RegExp | undefined {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\') re += escapeRegExp(pattern[++i] ?? '\\');
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) return undefined;
      let body = pattern.slice(i + 1, end);
      const negated = body.startsWith('^');
      if (negated) body = body.slice(1);
      re += `[${negated ? '^/' : ''}${body.replace(/[\]\\^]/g, (m) => `\\${m}`)}]`;
      i = end;
    } else re += escapeRegExp(c);
  }
  try {
    return new RegExp(`${re}$`, 's');
  } catch {
    // A malformed class: Go reports ErrBadPattern, which fsutil treats as no match.
    return undefined;
  }
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** Path order as fsutil walks and checks it: component by component, bytewise. */
export function comparePaths(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a.replaceAll('/', '\0')), Buffer.from(b.replaceAll('/', '\0')));
}

function parentsOf(name: string): string[] {
  const out: string[] = [];
  for (let i = name.indexOf('/'); i >= 0; i = name.indexOf('/', i + 1)) out.push(name.slice(0, i));
  return out;
}

/**
 * The paths one transfer sends, in walk order: the context's files (already filtered by `.dockerignore`), narrowed
 * by the request's include patterns and follow paths (a path matched by a pattern brings what is under it; a
 * followed symlink brings its target), and by its exclude patterns where they apply. Every sent path's parent
 * directories are sent before it, as the receiver requires.
 */
export function selectForTransfer(root: string, files: TransferEntry[], request: TransferRequest, ownExcludes: string[]): ContextFile[] {
  const byName = new Map(files.map((f) => [f.name, f]));
  let selected = files;

  const includes = request.includePatterns.map((p) => path.posix.normalize(p).replace(/^\/+|\/+$/g, ''));
  if (request.followPaths.length > 0) includes.push(...followLinks(request.followPaths, byName));
  if (request.includePatterns.length > 0 || request.followPaths.length > 0) {
    const patterns = includes.flatMap((p) => goPathPattern(p) ?? []);
    // A path is sent when a pattern matches it or one of its directories (which brings everything under it).
    const matched = new Map<string, boolean>();
    const matches = (name: string): boolean => {
      let known = matched.get(name);
      if (known === undefined) {
        const slash = name.lastIndexOf('/');
        known = patterns.some((re) => re.test(name)) || (slash > 0 && matches(name.slice(0, slash)));
        matched.set(name, known);
      }
      return known;
    };
    selected = files.filter((f) => matches(f.name));
  }
  // fsutil applies the request's excludes only where the directory has none of its own, or when told to.
  if (request.excludePatterns.length > 0 && (request.overrideExcludes || ownExcludes.length === 0)) {
    const ig = createIgnore({ ignorecase: false });
    ig.add(request.excludePatterns);
    selected = selected.filter((f) => !ig.ignores(f.name));
  }

  const names = new Set(selected.map((f) => f.name));
  const withParents = [...selected];
  for (const f of selected) {
    for (const parent of parentsOf(f.name)) {
      if (names.has(parent)) continue;
      names.add(parent);
      // A directory .dockerignore excludes but an exception reaches into: sent as itself, for what it holds.
      withParents.push(byName.get(parent) ?? { name: parent, abs: path.join(root, ...parent.split('/')), kind: 'dir' });
    }
  }
  // Sorted by precomputed keys: the same order as comparePaths.
  const keyed = withParents.map((f) => ({ f, key: Buffer.from(f.name.replaceAll('/', '\0')) }));
  return keyed.sort((a, b) => Buffer.compare(a.key, b.key)).map(({ f }) => f);
}

/** fsutil's FollowLinks: each follow path, and the targets of the symlinks among them (inside the directory). */
function followLinks(followPaths: string[], byName: Map<string, TransferEntry>): string[] {
  const out = new Set<string>();
  const visit = (name: string, depth: number) => {
    const clean = path.posix.normalize(name).replace(/^\/+|\/+$/g, '');
    if (out.has(clean) || depth > 40) return;
    out.add(clean);
    const entry = byName.get(clean);
    if (entry?.kind === 'symlink' && entry.linkTarget !== undefined) {
      const target = entry.linkTarget.startsWith('/') ? entry.linkTarget : path.posix.join(path.posix.dirname(clean), entry.linkTarget);
      if (!target.startsWith('..')) visit(target, depth + 1);
    }
  };
  for (const p of followPaths) visit(p, 0);
  return [...out];
}

/** A context entry with what a transfer needs of it: a symlink's target (follow paths resolve through it). */
export type TransferEntry = ContextFile & { linkTarget?: string };

/** Reads the symlinks' targets of a listed context. */
export async function withLinkTargets(files: ContextFile[]): Promise<TransferEntry[]> {
  return Promise.all(files.map(async (f) => (f.kind === 'symlink' ? { ...f, linkTarget: await readlink(f.abs).catch(() => undefined) } : f)));
}

/** The message stream of one DiffCopy call, in either direction. */
export interface PacketChannel {
  send(packet: Packet): Promise<void>;
  /** The daemon's packets, in order; ends when the daemon closes its side. */
  receive(): AsyncIterable<Uint8Array>;
}

/** What one transfer sent: the files the daemon asked for, and their bytes. */
export interface TransferReport {
  /** The directory asked for ("context", "dockerfile"). */
  dir: string;
  /** Paths offered (STAT packets). */
  offered: number;
  /** Files the daemon requested (and received), in the order asked. */
  requested: string[];
  bytes: number;
}

/** A file vanished or could not be read while it was sent: the transfer fails with this. */
export class TransferFailed extends Error {
  constructor(
    readonly file: string,
    cause: unknown,
  ) {
    super(`${file}: ${(cause as Error).message}`, { cause });
    this.name = 'TransferFailed';
  }
}

const DATA_CHUNK = 32 * 1024;
const STAT_BATCH = 64;

/**
 * Sends `entries` over one DiffCopy call: their STATs, then each file the daemon requests, until both sides FIN.
 * Resolves with what was sent; rejects when the daemon reports an error, leaves before the end, or a file cannot be
 * read (after telling the daemon with an ERR packet).
 */
export async function sendDiffCopy(channel: PacketChannel, dir: string, entries: ContextFile[]): Promise<TransferReport> {
  const report: TransferReport = { dir, offered: 0, requested: [], bytes: 0 };
  const files = new Map<number, ContextFile>();
  let queue: Promise<void> = Promise.resolve();
  let failure: Error | undefined;

  const sendFile = async (id: number, entry: ContextFile) => {
    report.requested.push(entry.name);
    try {
      for await (const chunk of createReadStream(entry.abs, { highWaterMark: DATA_CHUNK })) {
        report.bytes += (chunk as Buffer).length;
        await channel.send({ type: PacketType.DATA, ID: id, data: chunk as Buffer });
      }
    } catch (err) {
      throw new TransferFailed(entry.name, err);
    }
    await channel.send({ type: PacketType.DATA, ID: id });
  };

  const statOf = async (entry: ContextFile) => {
    try {
      const st = await lstat(entry.abs, { bigint: true });
      return { st, linkname: st.isSymbolicLink() ? await readlink(entry.abs) : '' };
    } catch (err) {
      throw new TransferFailed(entry.name, err);
    }
  };
  const sendStats = async () => {
    let id = 0;
    // Stat'ed a batch at a time, and sent a batch at a time (the channel puts what is sent at once in one write).
    for (let start = 0; start < entries.length; start += STAT_BATCH) {
      const batch = entries.slice(start, start + STAT_BATCH);
      const stats = await Promise.all(batch.map(statOf));
      for (const [i, { st, linkname }] of stats.entries()) {
        if (st.isFile()) files.set(id, batch[i]!);
        id++;
        await channel.send({ type: PacketType.STAT, stat: wireStat(batch[i]!.name, st, linkname) });
      }
    }
    report.offered = id;
    // The end of the list: a STAT packet without a stat.
    await channel.send({ type: PacketType.STAT });
  };

  const fail = async (err: Error) => {
    failure ??= err;
    // The daemon learns why the transfer stops; if the call is already gone, the failure above says enough.
    await channel.send({ type: PacketType.ERR, data: Buffer.from(err.message) }).catch(() => undefined);
  };

  // Requests may arrive while the list is still being sent: both run at once, files one after the other.
  const listing = sendStats().catch(fail);
  for await (const bytes of channel.receive()) {
    const packet = decodePacket(bytes);
    if (packet.type === PacketType.REQ) {
      const entry = files.get(packet.ID);
      if (!entry) {
        await fail(new Error(`the daemon requested unknown file ${packet.ID}`));
        break;
      }
      queue = queue.then(() => (failure ? undefined : sendFile(packet.ID, entry).catch(fail)));
    } else if (packet.type === PacketType.FIN) {
      await listing;
      await queue;
      if (failure) break;
      await channel.send({ type: PacketType.FIN });
      return report;
    } else if (packet.type === PacketType.ERR) {
      await listing;
      await queue;
      throw new Error(`the daemon failed to receive ${dir}: ${packet.data.toString('utf8')}`);
    }
    if (failure) break;
  }
  await listing;
  await queue;
  throw failure ?? new Error(`the daemon ended the ${dir} transfer before it was complete`);
}
