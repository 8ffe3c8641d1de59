import path from 'node:path';

/**
 * Normalises a path written in devloop.yaml to the resolved form: POSIX separators, no "./", no trailing "/",
 * "" for the root itself. Returns an error text instead when the path is absolute or leaves the root.
 */
export function normaliseRelPath(input: string): { path: string } | { error: string } {
  const slashed = input.replace(/\\/g, '/');
  if (path.posix.isAbsolute(slashed) || /^[A-Za-z]:\//.test(slashed)) {
    return { error: `"${input}" must be relative to the project directory, not absolute` };
  }
  const norm = path.posix.normalize(slashed).replace(/\/+$/, '');
  if (norm === '..' || norm.startsWith('../')) {
    return { error: `"${input}" points outside the project directory` };
  }
  return { path: norm === '.' ? '' : norm };
}

/** Joins repo-relative POSIX paths where "" is the root. */
export function joinRel(...parts: string[]): string {
  const joined = path.posix.join(...parts.filter((p) => p !== ''));
  return joined === '.' ? '' : joined.replace(/\/+$/, '');
}

/** True when `child` equals `dir` or lies below it (repo-relative; "" is the root and contains everything). */
export function isWithin(child: string, dir: string): boolean {
  return dir === '' || child === dir || child.startsWith(dir + '/');
}

/** Turns a directory name into a DNS-1123 label ("My_Service" → "my-service"); "" when nothing usable is left. */
export function toDnsLabel(name: string): string {
  return name
    .toLowerCase()
    .normalize('NFKD')
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-+/, '')
    .slice(0, 63)
    .replace(/-+$/, '');
}

/** How a file is named in messages: relative to the working directory when below it, else absolute. */
export function displayPath(file: string, cwd = process.cwd()): string {
  const rel = path.relative(cwd, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}
