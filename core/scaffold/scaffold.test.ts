import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadProject } from '../config/load.js';
import { ExternalError, UserError, UserErrors } from '../errors.js';
import { modulePrefixOf, planScaffold, scaffold, type ScaffoldEvent } from './scaffold.js';

const CONFIG = `# Shop: the services we develop together.
version: 1
name: shop

services:
  # The public API, in Go.
  - name: api
    path: services/api   # keep
    ports: ["8080:8080"]

# Local registry.
registry: 127.0.0.1:5000
`;

const made: string[] = [];
afterAll(async () => {
  for (const d of made) await rm(d, { recursive: true, force: true });
});

/** A real git repository: devloop.yaml, one Go service (services/api), all committed. */
async function monorepo(opts: { goMod?: boolean; config?: string | null } = {}): Promise<string> {
  const root = await mkdtemp(path.join(tmpdir(), 'devloop-scaffold-'));
  made.push(root);
  await mkdir(path.join(root, 'services/api'), { recursive: true });
  await writeFile(path.join(root, 'services/api/Dockerfile'), 'FROM scratch\n');
  if (opts.goMod !== false) await writeFile(path.join(root, 'services/api/go.mod'), 'module github.com/acme/shop/services/api\n\ngo 1.26.0\n');
  if (opts.config !== null) await writeFile(path.join(root, 'devloop.yaml'), opts.config ?? CONFIG);
  await git(root, 'init', '-q', '-b', 'main');
  await git(root, 'add', '-A');
  await git(root, 'commit', '-q', '-m', 'init');
  return root;
}

const git = (cwd: string, ...args: string[]) =>
  execa('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd });

/** Every file under root except .git, with a hash of its content: "nothing written" means this is unchanged. */
async function snapshot(root: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string) => {
    for (const e of await readdir(path.join(root, rel), { withFileTypes: true })) {
      const child = rel ? `${rel}/${e.name}` : e.name;
      if (child === '.git') continue;
      if (e.isDirectory()) {
        out[`${child}/`] = 'dir';
        await walk(child);
      } else out[child] = createHash('sha256').update(await readFile(path.join(root, child))).digest('hex');
    }
  };
  await walk('');
  return out;
}

/** Runs a command of the generated service for real; its output is in the failure message. */
async function run(cwd: string, file: string, args: string[], env: Record<string, string> = {}): Promise<string> {
  const r = await execa(file, args, { cwd, all: true, reject: false, env });
  if (r.failed) throw new Error(`${file} ${args.join(' ')} failed in ${cwd} (exit ${r.exitCode ?? r.code}):\n${r.all}`);
  return String(r.all);
}

// The Go checks run offline against vendor/, as the Docker build does; -trimpath lets the build cache serve
// every temporary copy of a template.
const offlineGo = { GOFLAGS: '-mod=vendor -trimpath -buildvcs=false', GOPROXY: 'off', GOWORK: 'off', CGO_ENABLED: '0' };

async function goChecks(dir: string, name: string, module: string): Promise<void> {
  expect(await run(dir, 'gofmt', ['-l', 'cmd', 'internal'])).toBe('');
  await run(dir, 'go', ['vet', './...'], offlineGo);
  const tests = await run(dir, 'go', ['test', './...'], offlineGo);
  expect(tests).toMatch(/ok\s+\S+\/internal\/server/);
  expect(tests).toMatch(/ok\s+\S+\/internal\/routing/);
  const ldflags = [
    `-X ${module}/internal/buildinfo.Version=1.2.3`,
    `-X ${module}/internal/buildinfo.GitCommit=abc1234`,
    `-X ${module}/internal/buildinfo.GitDirty=true`,
    `-X ${module}/internal/buildinfo.BuildTime=2026-01-02T03:04:05Z`,
  ].join(' ');
  await run(dir, 'go', ['build', '-trimpath', '-ldflags', ldflags, '-o', `bin/${name}`, `./cmd/${name}`], offlineGo);
  expect(await run(dir, `bin/${name}`, ['--version'])).toMatch(new RegExp(`^${name} 1\\.2\\.3 \\(commit abc1234, dirty, built 2026-01-02T03:04:05Z, go1\\.\\d+`));
}

describe('scaffold go-grpc', () => {
  let root: string;
  let events: ScaffoldEvent[];
  let result: Awaited<ReturnType<typeof scaffold>>;

  beforeAll(async () => {
    root = await monorepo();
    events = [];
    result = await scaffold({ cwd: root, template: 'go-grpc', name: 'orders' }, (e) => events.push(e));
  }, 120_000);

  it('writes the service beside the others with the module path of the repository convention', async () => {
    expect(result).toMatchObject({
      name: 'orders',
      path: 'services/orders',
      module: 'github.com/acme/shop/services/orders',
      moduleSource: 'the convention of services/api/go.mod',
    });
    expect(await readFile(path.join(root, 'services/orders/go.mod'), 'utf8')).toMatch(/^module github\.com\/acme\/shop\/services\/orders\n/);
    for (const f of ['cmd/orders/main.go', 'proto/greeter/v1/greeter.proto', 'proto/greeter/v1/greeter_grpc.pb.go', 'vendor/modules.txt', 'deploy/deployment.yaml', 'Dockerfile', 'Makefile']) {
      expect(existsSync(path.join(root, 'services/orders', f)), f).toBe(true);
    }
    expect(events.map((e) => e.kind)).toEqual(['rendered', 'command', 'registered']);
    // No staging directory is left behind.
    expect((await readdir(path.join(root, 'services'))).sort()).toEqual(['api', 'orders']);
  });

  it('registers the service in devloop.yaml, changing nothing else in the file', async () => {
    const text = await readFile(path.join(root, 'devloop.yaml'), 'utf8');
    const block = ['  - name: orders', '    path: services/orders', '    manifests: services/orders/deploy', '    ports: ["8081:8080"]', ''].join('\n');
    expect(text).toBe(CONFIG.replace('\n# Local registry.', `${block}\n# Local registry.`));
    const project = await loadProject(root);
    expect(project.services.find((s) => s.name === 'orders')).toMatchObject({
      path: 'services/orders',
      manifests: 'services/orders/deploy',
      image: 'shop/orders',
      ports: ['8081:8080'],
      dockerfile: 'Dockerfile',
    });
  });

  it('names the image devloop builds for it in the Deployment', async () => {
    expect(await readFile(path.join(root, 'services/orders/deploy/deployment.yaml'), 'utf8')).toMatch(/image: shop\/orders\n/);
  });

  it('passes go vet, go test and go build offline, and --version prints the stamped build info', async () => {
    await goChecks(path.join(root, 'services/orders'), 'orders', 'github.com/acme/shop/services/orders');
  }, 600_000);

  it('the checked-in generated code is what `go generate` produces', async () => {
    const dir = path.join(root, 'services/orders');
    const gobin = await protocPlugins();
    const before = await readFile(path.join(dir, 'proto/greeter/v1/greeter.pb.go'), 'utf8');
    const beforeGrpc = await readFile(path.join(dir, 'proto/greeter/v1/greeter_grpc.pb.go'), 'utf8');
    await run(dir, 'go', ['generate', './proto/...'], { ...offlineGo, PATH: `${gobin}${path.delimiter}${process.env.PATH}` });
    expect(await readFile(path.join(dir, 'proto/greeter/v1/greeter.pb.go'), 'utf8')).toBe(before);
    expect(await readFile(path.join(dir, 'proto/greeter/v1/greeter_grpc.pb.go'), 'utf8')).toBe(beforeGrpc);
  }, 300_000);
});

/** protoc from the system and the generator plugins at the versions the Makefile pins, installed once. */
async function protocPlugins(): Promise<string> {
  const protoc = await execa('protoc', ['--version'], { reject: false });
  if (protoc.failed) throw new Error('protoc is not installed (apt-get install protobuf-compiler): it is needed to check the generated gRPC code');
  const makefile = await readFile(path.join(import.meta.dirname, '../../templates/go-grpc/Makefile'), 'utf8');
  const version = (v: string) => new RegExp(`^${v}\\s*:=\\s*(\\S+)`, 'm').exec(makefile)![1]!;
  const gobin = path.join(tmpdir(), 'devloop-test-protoc-plugins', `${version('PROTOC_GEN_GO_VERSION')}-${version('PROTOC_GEN_GO_GRPC_VERSION')}`);
  if (!existsSync(path.join(gobin, 'protoc-gen-go-grpc'))) {
    await run(tmpdir(), 'go', ['install', `google.golang.org/protobuf/cmd/protoc-gen-go@${version('PROTOC_GEN_GO_VERSION')}`], { GOBIN: gobin });
    await run(tmpdir(), 'go', ['install', `google.golang.org/grpc/cmd/protoc-gen-go-grpc@${version('PROTOC_GEN_GO_GRPC_VERSION')}`], { GOBIN: gobin });
  }
  return gobin;
}

describe('scaffold go-http', () => {
  it('passes go vet, go test and go build offline', async () => {
    const root = await monorepo();
    // A Go workspace does not list the new module yet: vendoring ignores it, and the report says what to add.
    await writeFile(path.join(root, 'go.work'), 'go 1.26.0\n\nuse ./services/api\n');
    const result = await scaffold({ cwd: root, template: 'go-http', name: 'web', path: 'apps/web' });
    expect(result).toMatchObject({ path: 'apps/web', module: 'github.com/acme/shop/apps/web' });
    expect(result.notes).toEqual(['the repository has a go.work: add the new module with `go work use ./apps/web`']);
    await goChecks(path.join(root, 'apps/web'), 'web', 'github.com/acme/shop/apps/web');
    const project = await loadProject(root);
    expect(project.services.map((s) => s.name)).toEqual(['api', 'web']);
  }, 600_000);
});

describe('scaffold node-http', () => {
  it('passes its own tests and type check, and registers a sync rule and the dev target', async () => {
    const root = await monorepo();
    const result = await scaffold({ cwd: path.join(root, 'services'), template: 'node-http', name: 'storefront', path: 'storefront' });
    expect(result.path).toBe('services/storefront');
    expect(result.module).toBeUndefined();
    const dir = path.join(root, 'services/storefront');
    const tests = await run(dir, 'npm', ['test']);
    expect(tests).toMatch(/ℹ pass [1-9]/);
    expect(tests).toMatch(/ℹ fail 0/);
    // Type-check with the TypeScript and Node types devloop itself uses (the service's devDependencies are not installed).
    const repoRoot = path.join(import.meta.dirname, '../..');
    await run(dir, process.execPath, [path.join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', '.', '--typeRoots', path.join(repoRoot, 'node_modules/@types')]);

    expect(JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8'))).toMatchObject({ name: 'storefront' });
    const svc = (await loadProject(root)).services.find((s) => s.name === 'storefront');
    expect(svc).toMatchObject({ target: 'dev', ports: ['8081:8080'], sync: [{ from: 'src/**/*.ts', to: '/app/src' }], manifests: 'services/storefront/deploy' });
  }, 120_000);
});

describe('refusals change nothing', () => {
  let root: string;
  beforeAll(async () => {
    root = await monorepo();
    await mkdir(path.join(root, 'services/taken'));
    await writeFile(path.join(root, 'services/taken/notes.txt'), 'mine\n');
  });

  async function refused(req: Partial<Parameters<typeof scaffold>[0]>, cwd = root): Promise<UserError> {
    const before = await snapshot(root);
    const err = await scaffold({ cwd, template: 'go-http', name: 'x', ...req }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect(await snapshot(root)).toEqual(before);
    expect((await git(root, 'status', '--porcelain', '--untracked-files=all')).stdout).toBe('?? services/taken/notes.txt');
    return err as UserError;
  }

  it('an invalid name', async () => {
    const err = await refused({ name: 'Orders_API' });
    expect(err.message).toBe('service name: "Orders_API" has upper-case letters; use lower case ("orders_api")');
    expect(err.hint).toMatch(/DNS-1123/);
  });

  it('an existing service name', async () => {
    const err = await refused({ name: 'api', path: 'services/api2' });
    expect(err.message).toMatch(/^a service named "api" already exists in \S*devloop\.yaml \(path services\/api\)$/);
  });

  it('an existing directory, never written into', async () => {
    const err = await refused({ name: 'taken' });
    expect(err.message).toMatch(/services\/taken already exists; scaffold never writes into an existing path$/);
    expect(await readFile(path.join(root, 'services/taken/notes.txt'), 'utf8')).toBe('mine\n');
  });

  it('a directory inside another service, and every problem at once', async () => {
    const err = await refused({ name: 'Bad', path: 'services/api/sub' });
    expect(err).toBeInstanceOf(UserErrors);
    expect((err as UserErrors).problems).toEqual([
      'service name: "Bad" has upper-case letters; use lower case ("bad")',
      'services/api/sub is inside the directory of service "api" (services/api); services must not nest',
    ]);
  });

  it('an unknown template', async () => {
    const err = await refused({ template: 'go-grcp' });
    expect(err.message).toBe('unknown template "go-grcp" (did you mean "go-grpc"?)');
  });

  it('--module for a template without a Go module', async () => {
    const err = await refused({ template: 'node-http', module: 'example.com/x' });
    expect(err.message).toMatch(/--module is for the Go templates/);
  });

});

describe('the first ten minutes', () => {
  it('creates devloop.yaml when there is none, with the services found and the new one, and says so', async () => {
    const bare = await monorepo({ config: null });
    const r = await scaffold({ cwd: bare, template: 'node-http', name: 'web' });
    const text = await readFile(path.join(bare, 'devloop.yaml'), 'utf8');
    expect(text).toContain('  - name: api\n    path: services/api\n');
    expect(text).toContain('  - name: web\n    path: services/web\n');
    expect(r.notes[0]).toMatch(/^created .*devloop\.yaml for project "devloop-scaffold-\w+" \(named after the directory/);
    const project = await loadProject(bare);
    expect(project.services.map((s) => s.name)).toEqual(['api', 'web']);
  });

  it('takes the Go module from the git remote when no go.mod shows a convention', async () => {
    const bare = await monorepo({ goMod: false });
    await git(bare, 'remote', 'add', 'origin', 'git@github.com:acme/shop.git');
    const plan = await planScaffold({ cwd: bare, template: 'go-http', name: 'orders' });
    expect(plan.module).toBe('github.com/acme/shop/services/orders');
    expect(plan.moduleSource).toMatch(/^the git remote origin/);
  });

  it('takes the Go module from the project name without a go.mod or a remote', async () => {
    const bare = await monorepo({ goMod: false });
    const plan = await planScaffold({ cwd: bare, template: 'go-http', name: 'orders' });
    expect(plan.module).toBe(`${plan.project.name}/services/orders`);
    expect(plan.moduleSource).toMatch(/^the project name/);
  });

  it('reads module prefixes from the usual remote address forms', () => {
    expect(modulePrefixOf('git@github.com:acme/shop.git')).toBe('github.com/acme/shop');
    expect(modulePrefixOf('https://gitlab.example.com/group/sub/repo.git')).toBe('gitlab.example.com/group/sub/repo');
    expect(modulePrefixOf('ssh://git@github.com:22/acme/shop')).toBe('github.com/acme/shop');
    expect(modulePrefixOf('/srv/git/shop.git')).toBeUndefined();
  });
});

describe('a failing step undoes everything', () => {
  it('removes the new directories and leaves devloop.yaml alone when a template command fails', async () => {
    const root = await monorepo();
    const templates = await mkdtemp(path.join(tmpdir(), 'devloop-templates-'));
    made.push(templates);
    await mkdir(path.join(templates, 'failing'));
    await writeFile(path.join(templates, 'failing/template.yaml'), 'description: fails after rendering\nvariables: {name: n}\nafter:\n  - [sh, -c, "echo broken dependency >&2; exit 3"]\n');
    await writeFile(path.join(templates, 'failing/Dockerfile'), 'FROM scratch\n');
    const before = await snapshot(root);
    const err = await scaffold({ cwd: root, template: 'failing', name: 'deep', path: 'new/area/deep', templatesDir: templates }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ExternalError);
    expect((err as ExternalError).message).toBe('`sh -c echo broken dependency >&2; exit 3` failed in the new service (exit 3): broken dependency');
    expect(await snapshot(root)).toEqual(before);
  });
});
