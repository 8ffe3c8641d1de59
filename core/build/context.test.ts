import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { extract } from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { contextTarStream, listContext } from './context.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'devloop-ctx-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function files(entries: Record<string, string>): Promise<void> {
  for (const [name, content] of Object.entries(entries)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
}

async function tarNames(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const ex = extract();
  contextTarStream(dir).pipe(ex);
  for await (const entry of ex) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    out.set(`${entry.header.name}${entry.header.type === 'directory' ? '/' : ''}`, Buffer.concat(chunks).toString());
  }
  return out;
}

describe('build context', () => {
  it('honours .dockerignore patterns, exceptions and always sends Dockerfile and .dockerignore', async () => {
    await files({
      Dockerfile: 'FROM scratch\n',
      '.dockerignore': '# comment\nDockerfile\n.dockerignore\nnode_modules\n*.log\nbuild\n!build/keep.txt\n**/secret.txt\n',
      'src/main.go': 'package main',
      'src/deep/secret.txt': 'nope',
      'node_modules/x/index.js': 'x',
      'debug.log': 'log',
      'build/out.bin': 'bin',
      'build/keep.txt': 'keep',
    });
    const names = (await listContext(dir)).map((f) => f.name);
    expect(names).toContain('Dockerfile');
    expect(names).toContain('.dockerignore');
    expect(names).toContain('src/main.go');
    expect(names).toContain('build/keep.txt');
    expect(names).not.toContain('build/out.bin');
    expect(names).not.toContain('src/deep/secret.txt');
    expect(names.some((n) => n.startsWith('node_modules'))).toBe(false);
    expect(names).not.toContain('debug.log');
  });

  it('streams file contents and symlinks as a tar', async () => {
    await files({ Dockerfile: 'FROM scratch\nCOPY . /\n', 'a/b.txt': 'hello' });
    await symlink('a/b.txt', path.join(dir, 'link'));
    const tar = await tarNames();
    expect(tar.get('a/b.txt')).toBe('hello');
    expect(tar.get('Dockerfile')).toBe('FROM scratch\nCOPY . /\n');
    expect(tar.has('a/')).toBe(true);
    expect(tar.has('link')).toBe(true);
  });
});
