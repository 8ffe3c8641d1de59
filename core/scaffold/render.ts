import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { InternalError } from '../errors.js';
import { MANIFEST_FILE, type Template } from './templates.js';

/** One file of a rendered service. */
export interface RenderedFile {
  /** POSIX path relative to the service directory. */
  path: string;
  content: Buffer;
  mode: number;
}

const PLACEHOLDER = /\{\{\s*([A-Za-z][A-Za-z0-9_]*)\s*\}\}/g;
/** Template files that would confuse tools while inside templates/ (a go.mod with a placeholder) end in .tmpl. */
const TEMPLATE_SUFFIX = '.tmpl';
/** npm leaves .gitignore files out of packages, so templates name them dot-gitignore. */
const DOT_PREFIX = 'dot-';

/**
 * Replaces every {{variable}} in `text`. A placeholder the template did not declare is a bug in the template
 * (not the user's input), so it is an InternalError naming the file and line.
 */
export function renderText(text: string, vars: Record<string, string>, where: string): string {
  return text.replace(PLACEHOLDER, (match, name: string, offset: number) => {
    const value = vars[name];
    if (value === undefined) {
      const line = text.slice(0, offset).split('\n').length;
      throw new InternalError(`${where}:${line}: template uses ${match}, which is not one of its variables (${Object.keys(vars).join(', ')})`);
    }
    return value;
  });
}

/** Renders every file of `template` in memory: paths and contents with the variables filled in. */
export async function renderTemplate(template: Template, vars: Record<string, string>): Promise<RenderedFile[]> {
  const declared = Object.fromEntries(Object.keys(template.variables).map((k) => [k, vars[k]]));
  for (const [k, v] of Object.entries(declared)) {
    if (v === undefined) throw new InternalError(`template ${template.name} needs the variable "${k}" and none was given`);
  }
  const values = declared as Record<string, string>;
  const files: RenderedFile[] = [];
  for (const rel of await walk(template.dir)) {
    if (rel === MANIFEST_FILE) continue;
    const source = path.join(template.dir, rel);
    const [raw, info] = await Promise.all([readFile(source), stat(source)]);
    let out = renderText(rel, values, `${template.name}/${rel} (file name)`);
    if (out.endsWith(TEMPLATE_SUFFIX)) out = out.slice(0, -TEMPLATE_SUFFIX.length);
    out = out.split('/').map((part) => (part.startsWith(DOT_PREFIX) ? `.${part.slice(DOT_PREFIX.length)}` : part)).join('/');
    // Binary files are copied as they are.
    const content = raw.includes(0) ? raw : Buffer.from(renderText(raw.toString('utf8'), values, `${template.name}/${rel}`));
    files.push({ path: out, content, mode: info.mode & 0o777 });
  }
  return files;
}

async function walk(root: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
    const child = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...(await walk(root, child)));
    else if (e.isFile()) out.push(child);
  }
  return out.sort();
}
