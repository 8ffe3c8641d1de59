import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { locateStep } from './dockerfile.js';
import { chooseBuilder, decodeBuildkitStatus, isBuildkitUnsupported, parseVertexName, withoutCacheMounts } from './buildkit.js';

// Payloads as Docker 20.10.24 sent them (`moby.buildkit.trace` aux) for a build of
// `RUN --mount=type=cache,target=/root/.cache/go-build sh -c '…; echo hi2'`.
const COMPLETED_VERTEX =
  'Cr8CCkdzaGEyNTY6YzljZjQxODRkNTA4YjZlMmUzZjViNDYxNTBlODQ0YTNmNDc2YjM5OWFiYmVhZDVjYjAyNTQ5MDNjYjExZjFmYhJHc2hhMjU2OjEzOGRkMjZkNTBhY2M4Y2M2ZjNmMzExODBhMjdlYTU3OWM4MmRlNGM3M2Y3YTNkODJjN2M0MmZmZTJmZDdjMDIajgFbYnVpbGQgMi8yXSBSVU4gLS1tb3VudD10eXBlPWNhY2hlLHRhcmdldD0vcm9vdC8uY2FjaGUvZ28tYnVpbGQgc2ggLWMgJ2xzIC9yb290Ly5jYWNoZS9nby1idWlsZDsgZGF0ZSA+IC9yb290Ly5jYWNoZS9nby1idWlsZC9zdGFtcDsgZWNobyBoaTInKgwIzsK12AYQuLv8lAIyDAjPwrXYBhCf1+n6Ag==';
const LOG_LINE =
  'Gl8KR3NoYTI1NjpjOWNmNDE4NGQ1MDhiNmUyZTNmNWI0NjE1MGU4NDRhM2Y0NzZiMzk5YWJiZWFkNWNiMDI1NDkwM2NiMTFmMWZiEgwIz8K12AYQgq2N+QEYASIEaGkyCg==';
const DIGEST = 'sha256:c9cf4184d508b6e2e3f5b46150e844a3f476b399abbead5cb0254903cb11f1fb';

describe('decodeBuildkitStatus', () => {
  it('reads a vertex: its name, that it started and completed, no error', () => {
    const status = decodeBuildkitStatus(COMPLETED_VERTEX);
    expect(status.logs).toEqual([]);
    expect(status.vertexes).toEqual([
      {
        digest: DIGEST,
        name: "[build 2/2] RUN --mount=type=cache,target=/root/.cache/go-build sh -c 'ls /root/.cache/go-build; date > /root/.cache/go-build/stamp; echo hi2'",
        cached: false,
        started: true,
        completed: true,
        error: '',
      },
    ]);
  });

  it('reads a step output line with the vertex it belongs to', () => {
    const status = decodeBuildkitStatus(LOG_LINE);
    expect(status.vertexes).toEqual([]);
    expect(status.logs.map((l) => ({ vertex: l.vertex, msg: l.msg.toString('utf8') }))).toEqual([{ vertex: DIGEST, msg: 'hi2\n' }]);
  });
});

describe('parseVertexName', () => {
  it('splits a Dockerfile step from its stage and position, and leaves BuildKit’s own work out', () => {
    expect(parseVertexName('[build 2/3] RUN go build ./...')).toEqual({ stage: 'build', instruction: 'RUN go build ./...' });
    expect(parseVertexName('[stage-1 1/2] FROM gcr.io/distroless/static-debian12')).toEqual({
      stage: 'stage-1',
      instruction: 'FROM gcr.io/distroless/static-debian12',
    });
    expect(parseVertexName('[2/2] RUN echo hi')).toEqual({ stage: '', instruction: 'RUN echo hi' });
    expect(parseVertexName('[internal] load build definition from Dockerfile')).toBeUndefined();
  });
});

describe('chooseBuilder', () => {
  const engine = { apiVersion: '1.41', os: 'linux' };
  it('uses BuildKit on a Linux engine with API 1.39 or later', () => {
    expect(chooseBuilder(engine, {})).toEqual({ kind: 'buildkit' });
    expect(chooseBuilder({ apiVersion: '1.39', os: 'linux' }, {})).toEqual({ kind: 'buildkit' });
    expect(chooseBuilder(engine, { DOCKER_BUILDKIT: '1' })).toEqual({ kind: 'buildkit' });
  });
  it('falls back to the classic builder with the reason', () => {
    expect(chooseBuilder(engine, { DOCKER_BUILDKIT: '0' })).toEqual({ kind: 'classic', reason: 'DOCKER_BUILDKIT=0 asks for it' });
    expect(chooseBuilder({ apiVersion: '1.38', os: 'linux' }, {})).toEqual({
      kind: 'classic',
      reason: "the engine's API 1.38 has no BuildKit builder (it needs 1.39)",
    });
    expect(chooseBuilder({ apiVersion: '1.41', os: 'windows' }, {})).toEqual({
      kind: 'classic',
      reason: 'the engine runs on windows, where it has no BuildKit builder',
    });
  });
});

describe('isBuildkitUnsupported', () => {
  it('recognises an engine that refuses version=2 builds', () => {
    expect(isBuildkitUnsupported('buildkit not supported by daemon')).toBe(true);
    expect(isBuildkitUnsupported('buildkit is only supported with experimental mode')).toBe(true);
    expect(isBuildkitUnsupported('invalid version "2"')).toBe(true);
    expect(isBuildkitUnsupported('dockerfile parse error line 3: unknown instruction: FORM')).toBe(false);
  });
});

describe('withoutCacheMounts', () => {
  it('takes cache mounts out of RUN and keeps every line where it was', () => {
    const source = [
      'FROM golang:1.26 AS build',
      'RUN --mount=type=cache,target=/root/.cache/go-build \\',
      '    --mount=type=cache,target=/go/pkg/mod \\',
      '    go build ./...',
      'RUN --network=none --mount=target=/x,type=cache,id=x echo hi',
      'RUN --mount=type=secret,id=token cat /run/secrets/token',
      'RUN echo --mount=type=cache,target=/y',
      '',
    ].join('\n');
    expect(withoutCacheMounts(source)).toBe(
      [
        'FROM golang:1.26 AS build',
        'RUN \\',
        '\\',
        '    go build ./...',
        'RUN --network=none echo hi',
        'RUN --mount=type=secret,id=token cat /run/secrets/token',
        'RUN echo --mount=type=cache,target=/y',
        '',
      ].join('\n'),
    );
  });

  it('leaves a Dockerfile without cache mounts alone', () => {
    expect(withoutCacheMounts('FROM scratch\nRUN --mount=type=bind,source=a,target=/a true\n')).toBeUndefined();
  });
});

describe('locateStep with BuildKit step names', () => {
  it('finds a step whose build args BuildKit expanded, and a FROM by its image', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-locate-'));
    try {
      const file = path.join(dir, 'Dockerfile');
      await writeFile(
        file,
        'FROM golang:1.26 AS build\nARG VERSION=dev\nRUN echo other\nRUN --mount=type=cache,target=/c \\\n    go build -ldflags "-X main.v=${VERSION}" ./...\nFROM gcr.io/distroless/static-debian12\n',
      );
      expect(await locateStep(file, 'RUN --mount=type=cache,target=/c     go build -ldflags "-X main.v=1.2.3" ./...', undefined)).toBe(4);
      expect(await locateStep(file, 'FROM docker.io/library/golang:1.26', undefined)).toBe(1);
      expect(await locateStep(file, 'FROM gcr.io/distroless/static-debian12', undefined)).toBe(6);
      expect(await locateStep(file, 'RUN something else', undefined)).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
