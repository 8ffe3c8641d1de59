import { readFile } from 'node:fs/promises';

export interface DockerfileInstruction {
  /** 1-based line where the instruction starts. */
  line: number;
  /** The instruction as one line (continuations joined), as the classic builder prints it. */
  text: string;
}

/** Splits a Dockerfile into instructions with their starting lines (comments and blank lines skipped). */
export function parseDockerfileInstructions(source: string): DockerfileInstruction[] {
  const lines = source.split(/\r?\n/);
  const out: DockerfileInstruction[] = [];
  let current: { line: number; parts: string[] } | undefined;
  lines.forEach((raw, i) => {
    const trimmed = raw.trim();
    if (!current && (trimmed === '' || trimmed.startsWith('#'))) return;
    if (current && trimmed.startsWith('#')) return;
    const continues = /\\\s*$/.test(raw);
    const part = continues ? raw.replace(/\\\s*$/, '') : raw;
    if (!current) current = { line: i + 1, parts: [] };
    current.parts.push(part.trim());
    if (!continues) {
      out.push({ line: current.line, text: current.parts.filter((p) => p !== '').join(' ') });
      current = undefined;
    }
  });
  if (current) out.push({ line: current.line, text: current.parts.join(' ') });
  return out;
}

const squash = (s: string) => s.replace(/\s+/g, ' ').trim().toLowerCase();

/** An instruction's text as a pattern in which each variable reference matches any text. */
function withVariables(text: string): RegExp {
  const parts = squash(text).split(/\$\{[^}]*\}|\$[a-z_][a-z0-9_]*/);
  return new RegExp(`^${parts.map((p) => p.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*?')}$`, 's');
}

/** "FROM docker.io/library/golang:1.26 AS build" → "golang:1.26": BuildKit names base images in full. */
function fromImage(instruction: string): string | undefined {
  const m = /^from\s+(?:--\S+\s+)*(\S+)/i.exec(instruction.trim());
  return m?.[1]?.toLowerCase().replace(/^docker\.io\/(library\/)?/, '');
}

/**
 * Finds where the builder's step ("RUN make all", step 3) sits in the Dockerfile: by its text first (a FROM by its
 * image), then by position when the step number is one. Returns the 1-based line or undefined.
 */
export async function locateStep(dockerfilePath: string, instruction: string, stepNumber: number | undefined): Promise<number | undefined> {
  let source: string;
  try {
    source = await readFile(dockerfilePath, 'utf8');
  } catch {
    // The Dockerfile changed or went away since the build: the step is named without its line.
    return undefined;
  }
  const instructions = parseDockerfileInstructions(source);
  const wanted = squash(instruction);
  const byText = instructions.find((i) => squash(i.text) === wanted);
  if (byText) return byText.line;
  // BuildKit names a step with its build args expanded: a `$VAR` or `${VAR…}` of the file stands for any text.
  const byPattern = instructions.filter((i) => withVariables(i.text).test(wanted));
  if (byPattern.length === 1) return byPattern[0]!.line;
  const image = fromImage(instruction);
  const byImage = image ? instructions.find((i) => fromImage(i.text) === image) : undefined;
  if (byImage) return byImage.line;
  return stepNumber === undefined ? undefined : instructions[stepNumber - 1]?.line;
}
