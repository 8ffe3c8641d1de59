import { describe, expect, it } from 'vitest';
import { analyseDockerfile, expand, readingOf, sourceMatcher, type DockerfileReads } from './dockerfile-reads.js';

const analyse = (text: string, opts: { buildArgs?: Record<string, string>; target?: string } = {}): DockerfileReads =>
  analyseDockerfile(text, { dockerfile: 'svc/Dockerfile', buildArgs: opts.buildArgs ?? {}, target: opts.target });

/** Which instruction (line) reads each path, or null. */
function readers(reads: DockerfileReads, paths: string[]): Record<string, number | null> {
  return Object.fromEntries(paths.map((p) => [p, readingOf(reads, p)?.instruction.line ?? null]));
}

describe('analyseDockerfile', () => {
  it('reads the sources of COPY and ADD, naming the instruction', () => {
    const r = analyse('FROM scratch\nCOPY --chown=1:1 libs/greet \\\n  libs/greet\nADD ["go.mod", "go.sum", "./"]\nCOPY ./cmd/ /cmd\n');
    expect(r.warnings).toEqual([]);
    expect(readingOf(r, 'libs/greet/greet.go')?.instruction).toEqual({ dockerfile: 'svc/Dockerfile', line: 2, text: 'COPY --chown=1:1 libs/greet libs/greet' });
    expect(readers(r, ['libs/greet', 'libs/greeting/x.go', 'go.mod', 'go.sum', 'go.work', 'cmd/api/main.go', 'README.md'])).toEqual({
      'libs/greet': 2,
      'libs/greeting/x.go': null,
      'go.mod': 4,
      'go.sum': 4,
      'go.work': null,
      'cmd/api/main.go': 5,
      'README.md': null,
    });
  });

  it('reads everything for `COPY . .`, and keeps a leading / or .. inside the context', () => {
    expect(readers(analyse('FROM scratch\nCOPY . .\n'), ['a', 'b/c'])).toEqual({ a: 2, 'b/c': 2 });
    expect(readers(analyse('FROM scratch\nCOPY /etc/app ../x /dst/\n'), ['etc/app/a', 'x', 'y'])).toEqual({ 'etc/app/a': 2, x: 2, y: null });
  });

  it('matches wildcards per path segment, a matched directory bringing what is below it', () => {
    const r = analyse('FROM scratch\nCOPY *.go /src/\nCOPY cmd/*/main.go /cmd/\nCOPY lib? /l\nCOPY [a-c]x /c\n');
    expect(readers(r, ['main.go', 'sub/x.go', 'cmd/api/main.go', 'cmd/api/other.go', 'cmd/main.go', 'lib1/deep/f', 'lib12', 'bx', 'dx'])).toEqual({
      'main.go': 2,
      'sub/x.go': null,
      'cmd/api/main.go': 3,
      'cmd/api/other.go': null,
      'cmd/main.go': null,
      'lib1/deep/f': 4,
      lib12: null,
      bx: 5,
      dx: null,
    });
    expect(sourceMatcher('cmd/*/main.go').prefix).toBe('cmd');
    expect(readers(analyse('FROM scratch\nCOPY [^a]x /x\n'), ['ax', 'bx', '!x'])).toEqual({ ax: null, bx: 2, '!x': 2 });
  });

  it('follows `--from` to the stages the target needs, and leaves out copies from images and unused stages', () => {
    const text = [
      'FROM golang:1.22 AS deps', // 1
      'COPY go.mod go.sum ./', // 2
      'FROM deps AS build', // 3
      'COPY cmd ./cmd', // 4
      'FROM scratch AS tests', // 5
      'COPY testdata /testdata', // 6
      'FROM alpine AS final', // 7
      'COPY --from=build /out/app /app', // 8
      'COPY --from=docker.io/library/busybox /bin/sh /bin/sh', // 9
      'COPY config /config', // 10
    ].join('\n');
    const all = ['go.mod', 'cmd/main.go', 'testdata/a', 'config/x'];
    expect(readers(analyse(text), all)).toEqual({ 'go.mod': 2, 'cmd/main.go': 4, 'testdata/a': null, 'config/x': 10 });
    expect(readers(analyse(text, { target: 'tests' }), all)).toEqual({ 'go.mod': null, 'cmd/main.go': null, 'testdata/a': 6, 'config/x': null });
    expect(readers(analyse(text, { target: 'BUILD' }), all)).toEqual({ 'go.mod': 2, 'cmd/main.go': 4, 'testdata/a': null, 'config/x': null });
    // Stages by number, and a bind mount from a stage, count too.
    const byIndex = 'FROM scratch\nCOPY a /a\nFROM scratch\nCOPY b /b\nFROM scratch\nCOPY --from=0 /a /a\nRUN --mount=from=1,target=/b true\n';
    expect(readers(analyse(byIndex), ['a', 'b'])).toEqual({ a: 2, b: 4 });
  });

  it('expands build args, ARG defaults (global ones redeclared in the stage) and ENV', () => {
    const text = [
      'ARG LIB=libs/greet', // 1
      'FROM scratch', // 2
      'ARG LIB', // 3
      'ARG SERVICE=api', // 4
      'ARG EMPTY', // 5
      'ENV CONF=config/${SERVICE}', // 6
      'COPY ${LIB} /lib', // 7
      'COPY services/$SERVICE /src', // 8
      'COPY $CONF /conf', // 9
      'COPY "${EMPTY:-docs}" /docs', // 10
      'COPY tools/${EMPTY}x /x', // 11
    ].join('\n');
    const paths = ['libs/greet/a', 'libs/other/a', 'services/api/a', 'services/web/a', 'config/api/a', 'config/web/a', 'docs/a', 'tools/x', 'tools/yx'];
    expect(readers(analyse(text), paths)).toEqual({
      'libs/greet/a': 7,
      'libs/other/a': null,
      'services/api/a': 8,
      'services/web/a': null,
      'config/api/a': 9,
      'config/web/a': null,
      'docs/a': 10,
      'tools/x': 11,
      'tools/yx': null,
    });
    const withArgs = analyse(text, { buildArgs: { LIB: 'libs/other', SERVICE: 'web', EMPTY: 'y' } });
    expect(withArgs.warnings).toEqual([]);
    expect(readers(withArgs, paths)).toEqual({
      'libs/greet/a': null,
      'libs/other/a': 7,
      'services/api/a': null,
      'services/web/a': 8,
      'config/api/a': null,
      'config/web/a': 9,
      'docs/a': null,
      'tools/x': null,
      'tools/yx': 11,
    });
  });

  it('declares several ARGs on one line, and reads ENV in both its forms', () => {
    const r = analyse('FROM scratch\nARG A=a B\nENV C c d\nENV E="e f" G=$A\nCOPY $A$B /1\nCOPY "$C" /2\nCOPY "$E" /3\nCOPY $G /4\n');
    expect(r.warnings).toEqual([]);
    expect(r.reads.map((x) => x.prefix)).toEqual(['a', 'c d', 'e f', 'a']);
  });

  it('reads the whole context for a source it cannot resolve, and says which line', () => {
    // APP_DIR may come from the base image's ENV; TARGETARCH is filled in by BuildKit.
    const r = analyse('FROM node:22\nARG TARGETARCH\nCOPY src /src\nCOPY $APP_DIR /app\nCOPY bin/${TARGETARCH} /bin\n');
    expect(r.warnings).toEqual([
      'svc/Dockerfile:4: COPY $APP_DIR /app: cannot resolve $APP_DIR; every file of the build context counts as read by this instruction',
      'svc/Dockerfile:5: COPY bin/${TARGETARCH} /bin: cannot resolve $TARGETARCH; every file of the build context counts as read by this instruction',
    ]);
    expect(readers(r, ['src/a', 'anything/else'])).toEqual({ 'src/a': 3, 'anything/else': 4 });
    // A build arg resolves it; on `FROM scratch` an undeclared name is simply empty.
    expect(analyse('FROM node:22\nARG TARGETARCH\nCOPY bin/${TARGETARCH} /bin\n', { buildArgs: { TARGETARCH: 'arm64' } }).warnings).toEqual([]);
    expect(readers(analyse('FROM scratch\nCOPY bin/${NOPE}x /x\n'), ['bin/x', 'bin/y'])).toEqual({ 'bin/x': 2, 'bin/y': null });
  });

  it('counts bind mounts of the context, not caches, secrets or mounts from stages', () => {
    const r = analyse(
      'FROM scratch\nRUN --mount=type=bind,source=scripts,target=/s --mount=type=cache,target=/root/.cache sh /s/build.sh\nRUN --mount=type=secret,id=npm true\nRUN --mount=target=/ctx ls\n',
    );
    expect(r.reads.map((x) => [x.prefix, x.instruction.line])).toEqual([
      ['scripts', 2],
      ['', 4],
    ]);
  });

  it('takes here-documents as part of the Dockerfile, not as sources or instructions', () => {
    const r = analyse('FROM scratch\nCOPY <<EOF /etc/app.conf\nCOPY secrets /secrets\nEOF\nRUN <<-SH\n\tCOPY other /other\n\tSH\nADD https://example.com/x.tgz assets /\n');
    expect(r.reads.map((x) => [x.prefix, x.instruction.line, x.instruction.text])).toEqual([['assets', 8, 'ADD https://example.com/x.tgz assets /']]);
  });

  it('honours the escape parser directive', () => {
    const r = analyse('# escape=`\nFROM scratch\nCOPY `\n  a `\n  b/\n');
    expect(r.reads.map((x) => [x.prefix, x.instruction.line])).toEqual([['a', 3]]);
  });
});

describe('expand', () => {
  const vars: Record<string, string | undefined> = { A: 'x', E: '' };
  const lookup = (n: string) => (n in vars ? vars[n] : n === 'UNKNOWN' ? null : undefined);
  it.each([
    ['$A/b', 'x/b'],
    ['${A}b', 'xb'],
    ['${E:-d}', 'd'],
    ['${E-d}', ''],
    ['${N-d}', 'd'],
    ['${A:+y}', 'y'],
    ['${E:+y}', ''],
    ['${E+y}', 'y'],
    ["'$A'", '$A'],
    ['"$A b"', 'x b'],
    ['\\$A', '$A'],
    ['a$', 'a$'],
    ['${N:-${A}z}', 'xz'],
  ])('%s → %s', (word, value) => {
    expect(expand(word, lookup)).toEqual({ value });
  });
  it('names the variable it cannot know', () => {
    expect(expand('x/${UNKNOWN}/y', lookup)).toEqual({ unknown: 'UNKNOWN' });
    expect(expand('${UNKNOWN:-d}', lookup)).toEqual({ unknown: 'UNKNOWN' });
  });
});
