import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import type Dockerode from 'dockerode';
import { decodeBuildkitStatus, isBuildkitUnsupported, parseVertexName, withoutCacheMounts } from './buildkit.js';
import { contextTarStream, dockerfileInContext } from './context.js';
import { followProgress } from './docker.js';
import { locateStep } from './dockerfile.js';
import { BuildFailure } from './failures.js';

export { BuildFailure } from './failures.js';

export interface BuildRequest {
  service: string;
  /** Absolute build context directory. */
  contextDir: string;
  /** Dockerfile path relative to the context. */
  dockerfile: string;
  /** Full image reference to tag the result with. */
  image: string;
  buildArgs: Record<string, string>;
  target?: string;
  labels: Record<string, string>;
  /** How to name the Dockerfile in messages (e.g. repo-relative); default: context folder name + dockerfile. */
  dockerfileLabel?: string;
  /** Aborting closes the connection, which stops the build (either builder). */
  signal?: AbortSignal;
  /** "none": RUN steps have no network (an offline build that must stay offline). */
  network?: 'none';
}

/** BuildKit (POST /build?version=2) or the classic builder. */
export type BuilderKind = 'buildkit' | 'classic';

/** The engine refused a BuildKit build up front (it was started without it): the classic builder can take over. */
export class BuildkitUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildkitUnavailable';
  }
}

export type BuildProgress =
  | { kind: 'step'; step: number; total: number; instruction: string }
  | { kind: 'log'; line: string }
  /** Something the developer should know about how the build runs (e.g. why the classic builder is used). */
  | { kind: 'notice'; message: string };

interface BuildMessage {
  id?: string;
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
  /** The image ID ({ID}); with BuildKit, `moby.buildkit.trace` messages carry a base64 StatusResponse instead. */
  aux?: { ID?: string } | string;
}

const STEP = /^Step (\d+)\/(\d+) : (.*)$/;
const LAST_LINES = 10;
/** The daemon colours a step's stderr; progress lines carry carriage returns. */
const clean = (line: string) => line.replace(/\u001b\[[0-9;]*m/g, '').replace(/\r$/, '');
/** Builder bookkeeping that says nothing about why a step failed. */
const BUILDER_CHATTER = /^(Removing intermediate container|Running in) [0-9a-f]+$/;

/**
 * Builds one image through the Engine API, streaming the context as a tar: with BuildKit (its cache mounts persist
 * between builds) or with the classic builder. Reports each Dockerfile step and output line; on failure throws
 * BuildFailure naming the step (with its Dockerfile line) and its last output lines. With BuildKit, an engine that
 * refuses it up front makes this throw BuildkitUnavailable, before anything was built.
 */
export async function buildImage(
  docker: Dockerode,
  req: BuildRequest,
  onProgress: (p: BuildProgress) => void,
  builder: BuilderKind = 'classic',
): Promise<string> {
  const file = req.dockerfileLabel ?? path.join(path.basename(req.contextDir), req.dockerfile);
  let dockerfileText: string | undefined;
  if (builder === 'classic') {
    dockerfileText = withoutCacheMounts(await readDockerfile(req));
    if (dockerfileText !== undefined) onProgress({ kind: 'log', line: 'the classic builder has no cache mounts: RUN --mount=type=cache steps run without them' });
  }
  const tar = contextTarStream(req.contextDir, req.dockerfile, dockerfileText);
  // The build owns the context's producer: it stops with the build, whatever the outcome.
  try {
    return await runBuild(docker, req, builder, tar.stream, file, onProgress);
  } finally {
    await tar.close();
  }
}

/** The build itself, once its context is being produced: starts it, follows its progress, names its failure. */
async function runBuild(
  docker: Dockerode,
  req: BuildRequest,
  builder: BuilderKind,
  context: Readable,
  file: string,
  onProgress: (p: BuildProgress) => void,
): Promise<string> {
  // A context that fails while it is sent (a file vanished) is the reason the build failed, whatever the daemon says.
  let contextError: Error | undefined;
  context.on('error', (err: Error) => (contextError ??= err));
  const options = {
    t: req.image,
    dockerfile: dockerfileInContext(req.contextDir, req.dockerfile).name,
    buildargs: req.buildArgs,
    labels: req.labels,
    ...(req.target ? { target: req.target } : {}),
    ...(req.network ? { networkmode: req.network } : {}),
  };
  let stream: NodeJS.ReadableStream;
  try {
    stream =
      builder === 'buildkit'
        ? await startBuildkitBuild(docker, context, options, req.signal)
        : await docker.buildImage(context as unknown as NodeJS.ReadableStream, {
            ...options,
            rm: true,
            forcerm: true,
            ...(req.signal ? { abortSignal: req.signal } : {}),
          } as Dockerode.ImageBuildOptions);
  } catch (err) {
    if (contextError) throw contextError;
    const message = refusalMessage(err);
    if (builder === 'buildkit' && isBuildkitUnsupported(message)) {
      throw new BuildkitUnavailable(message);
    }
    // The daemon refused the build before any step: a Dockerfile it cannot parse, a context it cannot read. Both
    // are the user's to fix, so they are build failures that say where, not errors of devloop's.
    throw refusedBuild(message, file);
  }
  const read = builder === 'buildkit' ? readBuildkitProgress : readClassicProgress;
  const outcome = await read(docker, stream, onProgress).catch((err: unknown) => {
    throw contextError ?? err;
  });
  if (contextError) throw contextError;
  if (outcome.error !== undefined) {
    if (!outcome.failedStep) {
      // Nothing ran: the frontend refused the Dockerfile (BuildKit reports a parse error in the stream).
      const line = /(?:parse error (?:on )?line|line) (\d+)/i.exec(outcome.error)?.[1];
      throw new BuildFailure(outcome.error.trim(), `${file}${line ? `:${line}` : ''}`, outcome.lastLines);
    }
    const { label, instruction, step } = outcome.failedStep;
    // BuildKit's step numbers follow the order it lists steps in, across stages: only the classic builder's are
    // positions in the file.
    const line = await locateStep(path.join(req.contextDir, req.dockerfile), instruction, builder === 'classic' ? step : undefined);
    throw new BuildFailure(outcome.error.trim(), `${label}${line ? ` (${file}:${line})` : ''}`, outcome.lastLines);
  }
  if (outcome.imageId) return outcome.imageId;
  return (await docker.getImage(req.image).inspect()).Id;
}

async function readDockerfile(req: BuildRequest): Promise<string> {
  try {
    return await readFile(dockerfileInContext(req.contextDir, req.dockerfile).abs, 'utf8');
  } catch {
    // No Dockerfile to read: the build itself reports that, as it does for any builder.
    return '';
  }
}

/** How a build's progress stream ended. */
interface BuildOutcome {
  imageId: string | undefined;
  error: string | undefined;
  /** The step that failed: how to name it, its instruction (to find its line) and its position. */
  failedStep: { label: string; instruction: string; step: number } | undefined;
  lastLines: string[];
}

/**
 * POST /build?version=2 with the context as the request body. No session is attached: the daemon serves the body
 * to BuildKit as the context itself, base images come from the engine's image store, and nothing stays open once
 * the response ends. (dockerode's own version "2" path opens a session for registry credentials.)
 */
function startBuildkitBuild(
  docker: Dockerode,
  context: Readable,
  options: Record<string, unknown>,
  signal: AbortSignal | undefined,
): Promise<NodeJS.ReadableStream> {
  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        path: '/build?',
        method: 'POST',
        file: context,
        options: { ...options, version: '2' },
        isStream: true,
        ...(signal ? { abortSignal: signal } : {}),
        statusCodes: { 200: true, 400: 'bad parameter', 500: 'server error' },
      },
      (err: unknown, data: unknown) => (err ? reject(err) : resolve(data as NodeJS.ReadableStream)),
    );
  });
}

/** BuildKit's progress: vertexes (steps) that start, finish or fail, and the output lines each step prints. */
async function readBuildkitProgress(
  docker: Dockerode,
  stream: NodeJS.ReadableStream,
  onProgress: (p: BuildProgress) => void,
): Promise<BuildOutcome> {
  // Dockerfile steps in the order BuildKit lists them (stages run in parallel; their own numbering restarts).
  const steps = new Map<string, { index: number; name: string; instruction: string; reported: boolean; lines: string[]; pending: string }>();
  let stepCount = 0;
  let failed: string | undefined;
  let lastStep: string | undefined;
  let imageId: string | undefined;
  let error: string | undefined;

  const stepLine = (digest: string, line: string) => {
    const s = steps.get(digest);
    if (!s || line.trim() === '') return;
    s.lines.push(line);
    if (s.lines.length > LAST_LINES * 4) s.lines = s.lines.slice(-LAST_LINES);
    onProgress({ kind: 'log', line });
  };

  await followProgress<BuildMessage>(docker, stream, (msg) => {
    if (msg.id === 'moby.buildkit.trace' && typeof msg.aux === 'string') {
      const status = decodeBuildkitStatus(msg.aux);
      for (const v of status.vertexes) {
        const parsed = parseVertexName(v.name);
        if (!parsed) continue;
        let s = steps.get(v.digest);
        if (!s) steps.set(v.digest, (s = { index: ++stepCount, name: v.name, instruction: parsed.instruction, reported: false, lines: [], pending: '' }));
        if ((v.started || v.completed) && !s.reported) {
          s.reported = true;
          lastStep = v.digest;
          onProgress({ kind: 'step', step: s.index, total: stepCount, instruction: s.instruction });
        }
        if (v.error && !failed) failed = v.digest;
      }
      for (const log of status.logs) {
        const s = steps.get(log.vertex);
        if (!s) continue;
        const parts = (s.pending + log.msg.toString('utf8')).split('\n');
        s.pending = parts.pop() ?? '';
        for (const line of parts) stepLine(log.vertex, clean(line));
      }
      return;
    }
    if (typeof msg.aux === 'object' && msg.aux.ID) imageId = msg.aux.ID;
    if (msg.error !== undefined || msg.errorDetail?.message !== undefined) error = msg.errorDetail?.message ?? msg.error;
  });
  for (const [digest, s] of steps) if (s.pending) stepLine(digest, clean(s.pending));

  const failedStep = steps.get(failed ?? (error !== undefined ? (lastStep ?? '') : ''));
  return {
    imageId,
    error,
    failedStep: failedStep && { label: failedStep.name, instruction: failedStep.instruction, step: failedStep.index },
    lastLines: (failedStep?.lines ?? []).slice(-LAST_LINES),
  };
}

/** The classic builder's progress: "Step n/m : …" lines and each step's output. */
async function readClassicProgress(
  docker: Dockerode,
  stream: NodeJS.ReadableStream,
  onProgress: (p: BuildProgress) => void,
): Promise<BuildOutcome> {
  let step: { step: number; total: number; instruction: string } | undefined;
  let stepLines: string[] = [];
  let pending = '';
  let error: string | undefined;
  let imageId: string | undefined;

  const onLine = (line: string) => {
    const m = STEP.exec(line);
    if (m) {
      step = { step: Number(m[1]), total: Number(m[2]), instruction: m[3]! };
      stepLines = [];
      onProgress({ kind: 'step', ...step });
      return;
    }
    if (line.trim() === '') return;
    stepLines.push(line);
    if (stepLines.length > LAST_LINES * 4) stepLines = stepLines.slice(-LAST_LINES);
    onProgress({ kind: 'log', line });
  };

  await followProgress<BuildMessage>(docker, stream, (msg) => {
    if (msg.stream !== undefined) {
      pending += msg.stream;
      const parts = pending.split('\n');
      pending = parts.pop() ?? '';
      for (const line of parts) onLine(clean(line));
    }
    if (typeof msg.aux === 'object' && msg.aux.ID) imageId = msg.aux.ID;
    if (msg.error !== undefined || msg.errorDetail?.message !== undefined) error = msg.errorDetail?.message ?? msg.error;
  });
  if (pending) onLine(clean(pending));
  return {
    imageId,
    error,
    failedStep: step && { label: `Step ${step.step}/${step.total} : ${step.instruction}`, instruction: step.instruction, step: step.step },
    lastLines: stepLines.filter((l) => !l.startsWith(' ---> ') && !BUILDER_CHATTER.test(l)).slice(-LAST_LINES),
  };
}

/** What the daemon said when it refused a build, without docker-modem's "(HTTP code 400) …" prefix. */
function refusalMessage(err: unknown): string {
  const raw = (err as { json?: { message?: string }; message?: string }).json?.message ?? (err as Error).message ?? String(err);
  return raw.replace(/^\(HTTP code \d+\) [a-z ]+ - /i, '').trim();
}

/** "dockerfile parse error line 3: unknown instruction: FORM" → a BuildFailure at "api/Dockerfile:3". */
function refusedBuild(message: string, file: string): BuildFailure {
  const line = /(?:parse error (?:on )?line|line) (\d+)/i.exec(message)?.[1];
  return new BuildFailure(message, `${file}${line ? `:${line}` : ''}`, []);
}
