import { readFile } from 'node:fs/promises';

export interface DockerfileInstruction {
  /** 1-based line where the instruction starts. */
  line: number;
  /** The instruction as one line (continuations joined), as the classic builder prints it. */
  text: string;
}

/** One instruction with what the analysis of its sources needs. */
export interface ParsedInstruction extends DockerfileInstruction {
  /** Upper-case keyword: COPY, ADD, RUN, FROM, ARG, … */
  keyword: string;
  /** Everything after the keyword, continuations joined (heredoc bodies not included). */
  args: string;
  /** Here-documents that follow the instruction (`COPY <<EOF /dst`), with their bodies. */
  heredocs: { name: string; body: string }[];
}

export interface ParsedDockerfile {
  /** The escape character: `\` unless a `# escape=` parser directive says otherwise. */
  escape: string;
  instructions: ParsedInstruction[];
}

const HEREDOC_KEYWORDS = new Set(['RUN', 'COPY', 'ADD']);
const HEREDOC_MARKER = /<<(-?)(["']?)([A-Za-z_][A-Za-z0-9_]*)\2/g;

/**
 * Splits a Dockerfile into instructions the way Docker's parser does: parser directives at the top (`# escape=`),
 * continuation lines joined (comment and empty lines inside them skipped), and here-documents after RUN, COPY
 * and ADD read as bodies rather than instructions.
 */
export function parseDockerfile(source: string): ParsedDockerfile {
  const lines = source.split(/\r?\n/);
  let escape = '\\';
  for (const raw of lines) {
    const directive = /^#\s*([A-Za-z][A-Za-z0-9]*)\s*=\s*(\S+)\s*$/.exec(raw);
    if (!directive) break;
    if (directive[1]!.toLowerCase() === 'escape' && (directive[2] === '`' || directive[2] === '\\')) escape = directive[2];
  }
  const continuation = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  const instructions: ParsedInstruction[] = [];
  let current: { line: number; parts: string[] } | undefined;
  const finish = (next: number): number => {
    const text = current!.parts.filter((p) => p !== '').join(' ');
    const space = text.search(/\s/);
    const keyword = (space < 0 ? text : text.slice(0, space)).toUpperCase();
    const args = space < 0 ? '' : text.slice(space + 1).trim();
    const heredocs: ParsedInstruction['heredocs'] = [];
    if (HEREDOC_KEYWORDS.has(keyword)) {
      for (const m of args.matchAll(HEREDOC_MARKER)) {
        const stripTabs = m[1] === '-';
        const body: string[] = [];
        while (next < lines.length) {
          const bodyLine = stripTabs ? lines[next]!.replace(/^\t+/, '') : lines[next]!;
          next++;
          if (bodyLine === m[3]) break;
          body.push(bodyLine);
        }
        heredocs.push({ name: m[3]!, body: body.join('\n') });
      }
    }
    instructions.push({ line: current!.line, text, keyword, args, heredocs });
    current = undefined;
    return next;
  };
  for (let i = 0; i < lines.length; ) {
    const raw = lines[i]!;
    i++;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue; // before an instruction, or inside its continuation
    const continues = continuation.test(raw);
    if (!current) current = { line: i, parts: [] };
    current.parts.push((continues ? raw.replace(continuation, '') : raw).trim());
    if (!continues) i = finish(i);
  }
  if (current) finish(lines.length);
  return { escape, instructions };
}

/** Splits a Dockerfile into instructions with their starting lines (comments and blank lines skipped). */
export function parseDockerfileInstructions(source: string): DockerfileInstruction[] {
  return parseDockerfile(source).instructions.map(({ line, text }) => ({ line, text }));
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
