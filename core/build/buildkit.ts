import protobuf from 'protobufjs';

/**
 * The part of BuildKit's control API (moby/buildkit api/services/control/control.proto) that a build's progress is
 * made of. The engine sends each StatusResponse base64-encoded in the `aux` of a `moby.buildkit.trace` message;
 * fields left out here are skipped by the decoder.
 */
const STATUS_PROTO = `
syntax = "proto3";
package moby.buildkit.v1;
message StatusResponse {
  repeated Vertex vertexes = 1;
  repeated VertexLog logs = 3;
}
message Vertex {
  string digest = 1;
  string name = 3;
  bool cached = 4;
  Timestamp started = 5;
  Timestamp completed = 6;
  string error = 7;
}
message VertexLog {
  string vertex = 1;
  int64 stream = 3;
  bytes msg = 4;
}
message Timestamp {
  int64 seconds = 1;
  int32 nanos = 2;
}
`;

export interface BuildkitVertex {
  digest: string;
  name: string;
  cached: boolean;
  started: boolean;
  completed: boolean;
  error: string;
}

export interface BuildkitStatus {
  vertexes: BuildkitVertex[];
  logs: { vertex: string; msg: Buffer }[];
}

let statusType: protobuf.Type | undefined;

/** Decodes one `moby.buildkit.trace` payload (base64 protobuf StatusResponse). */
export function decodeBuildkitStatus(base64: string): BuildkitStatus {
  statusType ??= protobuf.parse(STATUS_PROTO).root.lookupType('moby.buildkit.v1.StatusResponse');
  const raw = statusType.toObject(statusType.decode(Buffer.from(base64, 'base64')), { defaults: true }) as {
    vertexes: { digest: string; name: string; cached: boolean; started?: object | null; completed?: object | null; error: string }[];
    logs: { vertex: string; msg: Uint8Array }[];
  };
  return {
    vertexes: raw.vertexes.map((v) => ({
      digest: v.digest,
      name: v.name,
      cached: v.cached,
      started: v.started != null,
      completed: v.completed != null,
      error: v.error,
    })),
    logs: raw.logs.map((l) => ({ vertex: l.vertex, msg: Buffer.from(l.msg) })),
  };
}

/**
 * "[build 2/3] RUN go build ./..." (or "[2/3] …" in a Dockerfile of one unnamed stage) → its stage and the
 * instruction; BuildKit's own work ("[internal] load …") → undefined.
 */
export function parseVertexName(name: string): { stage: string; instruction: string } | undefined {
  const m = /^\[(?:([^\]]+?) )?\d+\/\d+\] (.+)$/s.exec(name);
  if (!m) return undefined;
  return { stage: m[1] ?? '', instruction: m[2]! };
}

/** Which builder a build goes through, and why when it is not BuildKit. */
export type BuilderChoice = { kind: 'buildkit' } | { kind: 'classic'; reason: string };

/** BuildKit's builder is part of the Engine API (POST /build?version=2) from API 1.39 on, on Linux engines. */
const BUILDKIT_MIN_API = [1, 39] as const;

/**
 * Picks the builder for an engine: BuildKit when the engine serves it, the classic builder otherwise (with the
 * reason). DOCKER_BUILDKIT=0 asks for the classic builder, as it does for the docker CLI.
 */
export function chooseBuilder(engine: { apiVersion: string; os: string }, env: NodeJS.ProcessEnv = process.env): BuilderChoice {
  const setting = env.DOCKER_BUILDKIT?.trim().toLowerCase();
  if (setting === '0' || setting === 'false') return { kind: 'classic', reason: `DOCKER_BUILDKIT=${env.DOCKER_BUILDKIT} asks for it` };
  if (engine.os.toLowerCase() !== 'linux') return { kind: 'classic', reason: `the engine runs on ${engine.os}, where it has no BuildKit builder` };
  const [major = 0, minor = 0] = engine.apiVersion.split('.').map(Number);
  if (major < BUILDKIT_MIN_API[0] || (major === BUILDKIT_MIN_API[0] && minor < BUILDKIT_MIN_API[1])) {
    return { kind: 'classic', reason: `the engine's API ${engine.apiVersion} has no BuildKit builder (it needs ${BUILDKIT_MIN_API.join('.')})` };
  }
  return { kind: 'buildkit' };
}

/**
 * The daemon's answer when it cannot build with BuildKit: a build with version=2 refused up front ("buildkit is only
 * supported with experimental mode" from 18.09 engines, "not supported"/"not enabled" wordings, or a builder version
 * it does not know).
 */
export function isBuildkitUnsupported(message: string): boolean {
  return /buildkit (is )?(only supported|not supported|not enabled|disabled)|invalid version "?2"?/i.test(message);
}

/**
 * RUN cache mounts are BuildKit's: the classic builder rejects `--mount`. For it, `--mount=type=cache,…` flags are
 * taken out of RUN instructions (each on its own line, so line numbers stay), which runs the step without the
 * cache and with the same result. Other mount types change what a step sees and stay, for the builder to refuse.
 * Returns undefined when there is nothing to take out.
 */
export function withoutCacheMounts(dockerfile: string): string | undefined {
  const lines = dockerfile.split('\n');
  let changed = false;
  let continuing = false;
  let inRunFlags = false;
  for (const [i, original] of lines.entries()) {
    const run = continuing ? undefined : /^\s*RUN(\s+|$)/i.exec(original);
    if (run) inRunFlags = true;
    if (inRunFlags && !/^\s*#/.test(original)) {
      let rest = original.slice(run ? run[0].length : 0);
      let kept = run ? run[0] : '';
      for (let flag = /^(\s*)(--\S+)(\s+|$)/.exec(rest); flag; flag = /^(\s*)(--\S+)(\s+|$)/.exec(rest)) {
        if (/^--mount=(\S*,)?type=cache(,|$)/.test(flag[2]!)) changed = true;
        else kept += flag[0];
        rest = rest.slice(flag[0].length);
      }
      lines[i] = kept + rest;
      // The flags may go on over continuation lines until the command starts.
      inRunFlags = /^\s*\\?\s*$/.test(rest) && /\\\s*$/.test(original);
    }
    // A comment line inside a continued instruction neither ends nor continues it.
    if (!/^\s*#/.test(original)) continuing = /\\\s*$/.test(original);
  }
  return changed ? lines.join('\n') : undefined;
}
