import path from 'node:path';
import type Dockerode from 'dockerode';
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
  /** Aborting closes the connection, which stops the classic builder. */
  signal?: AbortSignal;
}

export type BuildProgress =
  | { kind: 'step'; step: number; total: number; instruction: string }
  | { kind: 'log'; line: string };

interface BuildMessage {
  stream?: string;
  error?: string;
  errorDetail?: { message?: string };
  aux?: { ID?: string };
}

const STEP = /^Step (\d+)\/(\d+) : (.*)$/;
const LAST_LINES = 10;
/** The daemon colours a step's stderr; progress lines carry carriage returns. */
const clean = (line: string) => line.replace(/\u001b\[[0-9;]*m/g, '').replace(/\r$/, '');
/** Builder bookkeeping that says nothing about why a step failed. */
const BUILDER_CHATTER = /^(Removing intermediate container|Running in) [0-9a-f]+$/;

/**
 * Builds one image with the classic builder API, streaming the context as a tar. Reports each Dockerfile step and
 * output line; on failure throws BuildFailure naming the step (with its Dockerfile line) and its last output lines.
 */
export async function buildImage(docker: Dockerode, req: BuildRequest, onProgress: (p: BuildProgress) => void): Promise<string> {
  const context = contextTarStream(req.contextDir, req.dockerfile);
  // A context that fails while it is sent (a file vanished) is the reason the build failed, whatever the daemon says.
  let contextError: Error | undefined;
  context.on('error', (err: Error) => (contextError ??= err));
  const file = req.dockerfileLabel ?? path.join(path.basename(req.contextDir), req.dockerfile);
  let stream: NodeJS.ReadableStream;
  try {
    stream = await docker.buildImage(context as unknown as NodeJS.ReadableStream, {
    t: req.image,
    dockerfile: dockerfileInContext(req.contextDir, req.dockerfile).name,
    buildargs: req.buildArgs,
    labels: req.labels,
    rm: true,
    forcerm: true,
    ...(req.target ? { target: req.target } : {}),
    ...(req.signal ? { abortSignal: req.signal } : {}),
    } as Dockerode.ImageBuildOptions);
  } catch (err) {
    if (contextError) throw contextError;
    // The daemon refused the build before any step: a Dockerfile it cannot parse, a context it cannot read. Both
    // are the user's to fix, so they are build failures that say where, not errors of devloop's.
    throw refusedBuild(err, file);
  }

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

  try {
    await followProgress<BuildMessage>(docker, stream, (msg) => {
      if (msg.stream !== undefined) {
        pending += msg.stream;
        const parts = pending.split('\n');
        pending = parts.pop() ?? '';
        for (const line of parts) onLine(clean(line));
      }
      if (msg.aux?.ID) imageId = msg.aux.ID;
      if (msg.error !== undefined || msg.errorDetail?.message !== undefined) error = msg.errorDetail?.message ?? msg.error;
    });
  } catch (err) {
    throw contextError ?? err;
  }
  if (pending) onLine(clean(pending));

  if (contextError) throw contextError;
  if (error !== undefined) {
    let where: string | undefined;
    if (step) {
      const line = await locateStep(path.join(req.contextDir, req.dockerfile), step.instruction, step.step);
      where = `Step ${step.step}/${step.total} : ${step.instruction}${line ? ` (${file}:${line})` : ''}`;
    }
    const lastLines = stepLines.filter((l) => !l.startsWith(' ---> ') && !BUILDER_CHATTER.test(l)).slice(-LAST_LINES);
    throw new BuildFailure(error.trim(), where, lastLines);
  }
  if (!imageId) {
    const inspected = await docker.getImage(req.image).inspect();
    imageId = inspected.Id;
  }
  return imageId;
}

/** "dockerfile parse error line 3: unknown instruction: FORM" → a BuildFailure at "api/Dockerfile:3". */
function refusedBuild(err: unknown, file: string): BuildFailure {
  const raw = (err as { json?: { message?: string }; message?: string }).json?.message ?? (err as Error).message ?? String(err);
  const message = raw.replace(/^\(HTTP code \d+\) [a-z ]+ - /i, '').trim();
  const line = /(?:parse error (?:on )?line|line) (\d+)/i.exec(message)?.[1];
  return new BuildFailure(message, `${file}${line ? `:${line}` : ''}`, []);
}
