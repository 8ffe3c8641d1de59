import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { addServiceEntry, type ServiceEntry } from './devloop-yaml.js';

const entry: ServiceEntry = { name: 'orders', path: 'services/orders', manifests: 'services/orders/deploy', ports: ['8081:8080'], sync: [] };
const nodeEntry: ServiceEntry = {
  name: 'web',
  path: 'services/web',
  manifests: 'services/web/deploy',
  target: 'dev',
  ports: ['3000:8080'],
  sync: [{ from: 'src/**/*.ts', to: '/app/src' }],
};

/** The edit must only insert: the old text is the new text with one contiguous block removed. */
function inserted(before: string, after: string): string {
  let i = 0;
  while (i < before.length && before[i] === after[i]) i++;
  i = before.lastIndexOf('\n', i - 1) + 1; // the block starts at a line start
  let j = 0;
  while (j < before.length - i && before[before.length - 1 - j] === after[after.length - 1 - j]) j++;
  expect(after.slice(0, i) + after.slice(after.length - j)).toBe(before);
  return after.slice(i, after.length - j);
}

describe('addServiceEntry', () => {
  it('appends after the last service, keeping every comment, quote and blank line', () => {
    const before = [
      '# Shop: the services we develop together.',
      'version: 1',
      "name: 'shop'   # quoted on purpose",
      '',
      'services:',
      '  # The public API.',
      '  - name: api',
      '    path: services/api   # Go',
      '    ports: [ "8080:8080" ]',
      '  # - name: legacy   (disabled)',
      '',
      '# Where images go.',
      'registry: 127.0.0.1:5000',
      '',
    ].join('\n');
    const after = addServiceEntry(before, entry, 'devloop.yaml');
    expect(inserted(before, after)).toBe(
      ['  - name: orders', '    path: services/orders', '    manifests: services/orders/deploy', '    ports: [ "8081:8080" ]', ''].join('\n'),
    );
    expect(after.indexOf('  - name: orders')).toBeLessThan(after.indexOf('# - name: legacy'));
    expect(parse(after).services.map((s: { name: string }) => s.name)).toEqual(['api', 'orders']);
  });

  it('follows a file that does not indent its lists, and writes sync rules and target', () => {
    const before = 'version: 1\nservices:\n- name: api\n  path: api\n';
    const after = addServiceEntry(before, nodeEntry, 'devloop.yaml');
    expect(inserted(before, after)).toBe(
      [
        '- name: web',
        '  path: services/web',
        '  manifests: services/web/deploy',
        '  target: dev',
        '  ports: ["3000:8080"]',
        '  sync:',
        '    - from: src/**/*.ts',
        '      to: /app/src',
        '',
      ].join('\n'),
    );
    expect(parse(after).services[1]).toEqual({ ...nodeEntry, ports: ['3000:8080'] });
  });

  it('follows four-space indentation', () => {
    const before = 'services:\n    -   name: api\n        path: api\n';
    const after = addServiceEntry(before, entry, 'devloop.yaml');
    expect(inserted(before, after)).toMatch(/^ {4}- {3}name: orders\n {8}path: services\/orders\n/);
    expect(parse(after).services[1].name).toBe('orders');
  });

  it('adds to a last line without a line break', () => {
    const before = 'services:\n  - name: api\n    path: api';
    const after = addServiceEntry(before, entry, 'devloop.yaml');
    expect(parse(after).services.map((s: { name: string }) => s.name)).toEqual(['api', 'orders']);
    expect(after.startsWith(before)).toBe(true);
  });

  it('replaces an empty list and keeps the comment on its line', () => {
    const before = 'version: 1\nservices: []   # none yet\nname: shop\n';
    const after = addServiceEntry(before, entry, 'devloop.yaml');
    expect(after).toBe(
      'version: 1\nservices:   # none yet\n  - name: orders\n    path: services/orders\n    manifests: services/orders/deploy\n    ports: ["8081:8080"]\nname: shop\n',
    );
  });

  it('fills an empty "services:" key and adds a missing one at the end', () => {
    expect(parse(addServiceEntry('services:\nname: shop\n', entry, 'f')).services[0].name).toBe('orders');
    const after = addServiceEntry('# only a name\nname: shop', entry, 'f');
    expect(after.startsWith('# only a name\nname: shop\nservices:\n  - name: orders\n')).toBe(true);
  });

  it('keeps CRLF line endings', () => {
    const before = 'services:\r\n  - name: api\r\n    path: api\r\n';
    const after = addServiceEntry(before, entry, 'devloop.yaml');
    expect(after.replace(/\r\n/g, '')).not.toContain('\n');
    expect(parse(after).services[1].name).toBe('orders');
  });

  it('keeps a flow-style list in flow style', () => {
    const before = 'services: [{name: api, path: api}]\n';
    const after = addServiceEntry(before, entry, 'devloop.yaml');
    expect(after).toMatch(/^services: \[/);
    expect(parse(after).services.map((s: { name: string }) => s.name)).toEqual(['api', 'orders']);
  });

  it('refuses a services key that is not a list', () => {
    expect(() => addServiceEntry('services: {api: {}}\n', entry, 'devloop.yaml')).toThrow(/devloop.yaml: "services" is not a list/);
  });
});
