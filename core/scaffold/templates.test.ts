import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { InternalError, UserError } from '../errors.js';
import { renderTemplate, renderText } from './render.js';
import { listTemplates, loadTemplate, readTemplate } from './templates.js';

const vars = { name: 'orders', module: 'example.com/shop/services/orders', image: 'shop/orders' };

describe('bundled templates', () => {
  it('are go-grpc, go-http and node-http, each with a one-line description', async () => {
    const templates = await listTemplates();
    expect(templates.map((t) => t.name)).toEqual(['go-grpc', 'go-http', 'node-http']);
    // Short enough for an 80-column terminal beside the name.
    for (const t of templates) expect(t.description).toMatch(/^[^\n]{20,64}$/);
  });

  it.each(['go-grpc', 'go-http', 'node-http'])('%s renders every placeholder and no manifest', async (name) => {
    const files = await renderTemplate(await loadTemplate(name), vars);
    const paths = files.map((f) => f.path);
    expect(paths).not.toContain('template.yaml');
    expect(paths).toContain('Dockerfile');
    expect(paths).toContain('deploy/kustomization.yaml');
    expect(paths).toContain('.gitignore');
    expect(paths.filter((p) => p.includes('dot-'))).toEqual([]);
    for (const f of files) {
      expect(f.path).not.toMatch(/\{\{|\.tmpl$/);
      expect(f.content.toString('utf8'), f.path).not.toMatch(/\{\{\s*[A-Za-z]/);
    }
    if (name.startsWith('go-')) {
      expect(paths).toContain('cmd/orders/main.go');
      expect(files.find((f) => f.path === 'go.mod')!.content.toString()).toMatch(/^module example\.com\/shop\/services\/orders\n/);
    }
  });

  it('unknown template names get the list and a suggestion', async () => {
    const err = await loadTemplate('go-grcp').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).message).toBe('unknown template "go-grcp" (did you mean "go-grpc"?)');
    expect((err as UserError).hint).toMatch(/go-grpc, go-http, node-http/);
  });
});

describe('renderText', () => {
  it('fills declared variables and tolerates spaces inside the braces', () => {
    expect(renderText('a {{name}} b {{ image }}', vars, 'f')).toBe('a orders b shop/orders');
  });
  it('leaves Go composite literals alone', () => {
    expect(renderText('m := map[string]struct{}{}', vars, 'f')).toBe('m := map[string]struct{}{}');
  });
  it('an undeclared placeholder is a template bug naming file and line', () => {
    expect(() => renderText('x\ny {{port}}', vars, 'go-grpc/Dockerfile')).toThrow(InternalError);
    expect(() => renderText('x\ny {{port}}', vars, 'go-grpc/Dockerfile')).toThrow(/go-grpc\/Dockerfile:2: template uses \{\{port\}\}/);
  });
});

describe('readTemplate', () => {
  it('reports a broken manifest as a bug in the template', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'devloop-tpl-'));
    try {
      await mkdir(path.join(dir, 'broken'));
      await writeFile(path.join(dir, 'broken', 'template.yaml'), 'description: x\nvariables: {name: n, port: p}\n');
      await expect(readTemplate(path.join(dir, 'broken'))).rejects.toThrow(/broken: variables.port: devloop supplies only name, module, image/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
