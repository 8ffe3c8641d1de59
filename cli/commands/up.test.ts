import { describe, expect, it } from 'vitest';
import { runCli } from '../run-in-process.js';
import { tempRepos } from './testing.js';

const newRepo = tempRepos();

describe('devloop up', () => {
  it('says there is nothing to run, before reaching for Docker or a cluster, in a repo without services', async () => {
    const repo = newRepo({ 'README.md': 'no services yet\n' });
    const r = await runCli(`--cwd=${repo.dir}`, 'up', '--once', '--target', 'docker');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`nothing to run: no devloop.yaml, and no Dockerfile under ${repo.dir}`);
    expect(r.stderr).toContain('devloop scaffold');
    expect(r.stderr).not.toMatch(/Docker engine/);
  });

  it('names the devloop.yaml that declares no services', async () => {
    const repo = newRepo({ 'devloop.yaml': 'version: 1\nname: empty\nservices: []\n' });
    const r = await runCli(`--cwd=${repo.dir}`, 'up', '--once', '--target', 'docker');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/nothing to run: \S*devloop\.yaml declares no services/);
  });
});
