import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inferGoModule, parseModuleLine } from './go-module.js';

const made: string[] = [];
afterEach(async () => {
  for (const dir of made.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function repo(goMods: Record<string, string>): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'devloop-gomod-'));
  made.push(root);
  for (const [dir, module] of Object.entries(goMods)) {
    await mkdir(path.join(root, dir), { recursive: true });
    await writeFile(path.join(root, dir, 'go.mod'), `// comment\nmodule ${module}\n\ngo 1.26.0\n`);
  }
  return root;
}

describe('parseModuleLine', () => {
  it('reads plain, quoted and commented module lines', () => {
    expect(parseModuleLine('module example.com/a\n')).toBe('example.com/a');
    expect(parseModuleLine('// x\nmodule "example.com/b" // trailing\n')).toBe('example.com/b');
    expect(parseModuleLine('go 1.26\n')).toBeUndefined();
  });
});

describe('inferGoModule', () => {
  it('follows modules named after their directory', async () => {
    const root = await repo({ 'services/api': 'github.com/acme/shop/services/api', 'services/auth': 'github.com/acme/shop/services/auth' });
    expect(await inferGoModule(root, 'services/orders')).toEqual({
      module: 'github.com/acme/shop/services/orders',
      evidence: ['services/api/go.mod', 'services/auth/go.mod'],
    });
  });

  it('follows modules named after the base name of their directory', async () => {
    const root = await repo({ 'svc/api': 'acme.dev/api', 'svc/auth': 'acme.dev/auth' });
    expect((await inferGoModule(root, 'svc/orders'))?.module).toBe('acme.dev/orders');
  });

  it('counts a root go.mod, ignores major-version suffixes, vendor and hidden directories', async () => {
    const root = await repo({
      '': 'github.com/acme/mono',
      'tools/gen': 'github.com/acme/mono/tools/gen/v2',
      'services/api/vendor/x': 'other.org/x',
      '.cache/y': 'other.org/y',
    });
    expect(await inferGoModule(root, 'services/orders')).toEqual({
      module: 'github.com/acme/mono/services/orders',
      evidence: ['go.mod', 'tools/gen/go.mod'],
    });
  });

  it('takes the convention most go.mod files follow', async () => {
    const root = await repo({ 'a/one': 'x.io/a/one', 'a/two': 'x.io/a/two', 'b/three': 'y.io/three' });
    expect((await inferGoModule(root, 'a/four'))?.module).toBe('x.io/a/four');
  });

  it('gives up when there is no go.mod, or none follows a convention', async () => {
    const root = await repo({});
    expect(await inferGoModule(root, 'services/orders')).toBeUndefined();
    const other = await repo({ 'services/api': 'example.com/unrelated' });
    expect(await inferGoModule(other, 'services/orders')).toBeUndefined();
  });
});
