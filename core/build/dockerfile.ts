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

/**
 * Finds where the builder's step ("RUN make all", step 3) sits in the Dockerfile: by its text first, then by
 * position. Returns the 1-based line or undefined.
 */
export async function locateStep(dockerfilePath: string, instruction: string, stepNumber: number): Promise<number | undefined> {
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
  return instructions[stepNumber - 1]?.line;
}
