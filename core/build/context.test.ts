import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { extract } from 'tar-stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ContextChanged, contextTarStream, listContext } from './context.js';

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
  const tar = contextTarStream(dir);
  tar.stream.pipe(ex);
  for await (const entry of ex) {
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    out.set(`${entry.header.name}${entry.header.type === 'directory' ? '/' : ''}`, Buffer.concat(chunks).toString());
  }
  await tar.close();
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

describe('build context edge cases', () => {
  it('prefers <Dockerfile>.dockerignore and matches case-sensitively', async () => {
    await files({
      'docker/app.Dockerfile': 'FROM scratch\n',
      'docker/app.Dockerfile.dockerignore': 'secret*\n',
      '.dockerignore': 'src\n',
      'src/a.txt': 'a',
      'secret.txt': 's',
      'Secret.md': 'S',
    });
    const names = (await listContext(dir, 'docker/app.Dockerfile')).map((f) => f.name);
    expect(names).toContain('src/a.txt');
    expect(names).toContain('Secret.md');
    expect(names).not.toContain('secret.txt');
  });

  it('adds a Dockerfile from outside the context under a generated name', async () => {
    await files({ 'ctx/a.txt': 'a', 'elsewhere/Dockerfile': 'FROM scratch\nCOPY a.txt /\n' });
    const listed = await listContext(path.join(dir, 'ctx'), '../elsewhere/Dockerfile');
    const extra = listed.find((f) => f.name.startsWith('.dockerfile.'));
    expect(extra?.abs).toBe(path.join(dir, 'elsewhere/Dockerfile'));
    expect(listed.map((f) => f.name)).toContain('a.txt');
  });

  it('ends the stream with ContextChanged, not a crash, when listed files vanish while it is read', async () => {
    const many: Record<string, string> = { Dockerfile: 'FROM scratch\n' };
    for (let i = 0; i < 200; i++) many[`src/f${String(i).padStart(3, '0')}.txt`] = 'x'.repeat(64 * 1024);
    await files(many);
    const tar = contextTarStream(dir);
    const stream = tar.stream;
    const failed = new Promise<unknown>((resolve) => stream.on('error', resolve));
    // Read the first chunk, then take the rest of the tree away before reading on (a branch switch mid-build).
    await new Promise<void>((resolve) => stream.once('readable', () => resolve()));
    stream.read();
    await rm(path.join(dir, 'src'), { recursive: true, force: true });
    stream.resume();
    const err = await failed;
    expect(err).toBeInstanceOf(ContextChanged);
    expect((err as ContextChanged).message).toMatch(/^src\/f\d{3}\.txt changed while the build context was being sent$/);
    await tar.close();
  });

  it('stops producing when its reader gives up mid-file, and close() waits for that', async () => {
    const many: Record<string, string> = { Dockerfile: 'FROM scratch\n' };
    for (let i = 0; i < 50; i++) many[`src/f${String(i).padStart(2, '0')}.txt`] = 'x'.repeat(256 * 1024);
    await files(many);
    const tar = contextTarStream(dir);
    const errors: unknown[] = [];
    tar.stream.on('error', (err) => errors.push(err));
    // One chunk read, the rest left unread: the producer waits on a full stream until close() stops it.
    await new Promise<void>((resolve) => tar.stream.once('readable', () => resolve()));
    const first = tar.stream.read() as Buffer;
    await tar.close();
    expect(first.length).toBeGreaterThan(0);
    expect(tar.stream.destroyed).toBe(true);
    // A reader that gave up is told nothing: the stream ends without an error.
    expect(errors).toEqual([]);
  });
});
