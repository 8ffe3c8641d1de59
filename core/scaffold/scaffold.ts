import { mkdir, mkdtemp, readFile, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { CONFIG_FILE, loadProject } from '../config/load.js';
import { renderConfig } from '../config/write.js';
import { displayPath, isWithin, normaliseRelPath } from '../config/paths.js';
import type { ProjectConfig } from '../config/types.js';
import { ExternalError, InternalError, UserError, UserErrors } from '../errors.js';
import { addServiceEntry, type ServiceEntry } from './devloop-yaml.js';
import { inferGoModule } from './go-module.js';
import { goModuleProblem, serviceNameProblem } from './names.js';
import { renderTemplate, type RenderedFile } from './render.js';
import { loadTemplate, type Template } from './templates.js';
import { existsNoFollow } from '../fs.js';

export interface ScaffoldRequest {
  /** Where devloop runs; the project is the one containing it. */
  cwd: string;
  template: string;
  name: string;
  /** The service directory, relative to `cwd`; default: next to the existing services. */
  path?: string;
  /** Go module path for the Go templates; default: inferred from the repository's go.mod files. */
  module?: string;
  /** Where the templates are; default: the ones shipped with devloop. */
  templatesDir?: string;
}

/** Progress of a scaffold run, for renderers. */
export type ScaffoldEvent =
  | { kind: 'rendered'; files: number }
  | { kind: 'command'; argv: string[] }
  | { kind: 'registered'; configFile: string };

/** Everything a scaffold will do, decided and checked before anything is written. */
export interface ScaffoldPlan {
  project: ProjectConfig;
  configFile: string;
  template: Template;
  /** Repo-relative service directory. */
  path: string;
  dir: string;
  entry: ServiceEntry;
  module?: string;
  /** Where the module path came from, for the report. */
  moduleSource?: string;
  files: RenderedFile[];
  /** The devloop.yaml as it was; null when there was none and scaffold creates it. */
  originalConfig: string | null;
  newConfig: string;
}

export interface ScaffoldResult {
  name: string;
  template: string;
  path: string;
  dir: string;
  configFile: string;
  entry: ServiceEntry;
  module?: string;
  moduleSource?: string;
  files: number;
  /** Things the user should know or do next. */
  notes: string[];
}

/**
 * Loads the project that scaffold adds to. Without a devloop.yaml, one is created: the services found from
 * Dockerfiles (as `devloop init` writes them), the project named after the directory — `created` says so.
 */
export async function projectForScaffold(cwd: string): Promise<ProjectConfig & { file: string; created: boolean }> {
  const project = await loadProject(cwd);
  if (project.file === null) return { ...project, file: path.join(project.root, CONFIG_FILE), created: true };
  return { ...(project as ProjectConfig & { file: string }), created: false };
}

/** The default directory of a new service: beside most existing services, else services/<name>. */
export function defaultServicePath(project: ProjectConfig, name: string): string {
  const parents = new Map<string, number>();
  for (const s of project.services) {
    if (s.path === '') continue;
    const parent = path.posix.dirname(s.path) === '.' ? '' : path.posix.dirname(s.path);
    parents.set(parent, (parents.get(parent) ?? 0) + 1);
  }
  const best = [...parents.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0];
  if (!best) return `services/${name}`;
  return best[0] === '' ? name : `${best[0]}/${name}`;
}

/** Local ports for forwarding `containerPorts`: the same number when free in devloop.yaml, else the next free one. */
export function allocatePorts(project: ProjectConfig, containerPorts: number[]): string[] {
  const used = new Set<number>();
  for (const s of project.services) for (const p of s.ports) used.add(Number(String(p).split(':')[0]));
  return containerPorts.map((remote) => {
    let local = remote;
    while (used.has(local)) local++;
    used.add(local);
    return `${local}:${remote}`;
  });
}

/** Decides and checks everything; writes nothing. Every problem with the request is reported at once. */
export async function planScaffold(req: ScaffoldRequest): Promise<ScaffoldPlan> {
  const project = await projectForScaffold(req.cwd);
  const template = await loadTemplate(req.template, req.templatesDir);
  const problems: string[] = [];
  const hints = new Set<string>();

  const nameProblem = serviceNameProblem(req.name);
  if (nameProblem) {
    problems.push(`service name: ${nameProblem}`);
    hints.add('a service name is a DNS-1123 label: lower-case letters, digits and "-", starting with a letter');
  }
  const clash = project.services.find((s) => s.name === req.name);
  if (clash) {
    problems.push(`a service named "${req.name}" already exists in ${displayPath(project.file!)} (path ${clash.path || '.'})`);
    hints.add('choose another name');
  }

  let relPath = defaultServicePath(project, req.name);
  if (req.path !== undefined) {
    const fromRoot = path.relative(project.root, path.resolve(req.cwd, req.path)).split(path.sep).join('/');
    const n = normaliseRelPath(fromRoot);
    if ('error' in n || n.path === '') {
      problems.push(`--path ${req.path}: ${'error' in n ? n.error : 'the service needs its own directory, not the project root'}`);
    } else relPath = n.path;
  }
  const dir = path.join(project.root, relPath);
  const container = project.services.find((s) => s.path !== '' && isWithin(relPath, s.path));
  if (await existsNoFollow(dir)) {
    problems.push(`${displayPath(dir)} already exists; scaffold never writes into an existing path`);
    hints.add('choose another name or --path');
  } else if (container) {
    problems.push(`${relPath} is inside the directory of service "${container.name}" (${container.path}); services must not nest`);
    hints.add('choose a --path outside other services');
  }
  const image = `${project.name}/${req.name}`;
  const imageClash = project.services.find((s) => s.image === image);
  if (imageClash && imageClash !== clash) problems.push(`image "${image}" is already used by service "${imageClash.name}"`);

  let module: string | undefined;
  let moduleSource: string | undefined;
  if (template.variables.module) {
    if (req.module !== undefined) {
      module = req.module;
      moduleSource = '--module';
    } else {
      const inferred = await inferGoModule(project.root, relPath);
      if (inferred) {
        module = inferred.module;
        moduleSource = `the convention of ${inferred.evidence.slice(0, 3).join(', ')}${inferred.evidence.length > 3 ? ', …' : ''}`;
      } else {
        // No go.mod to follow: the repository's own address (git remote origin), else a path under the project name.
        const remote = await moduleFromRemote(project.root);
        module = remote ? `${remote}/${relPath}` : `${project.name}/${relPath}`;
        moduleSource = remote ? 'the git remote origin (no go.mod here to follow; --module sets another)' : 'the project name (no go.mod or git remote here to follow; --module sets another)';
      }
    }
    const moduleProblem = module === undefined ? undefined : goModuleProblem(module);
    if (moduleProblem) problems.push(moduleProblem);
  } else if (req.module !== undefined) {
    problems.push(`--module is for the Go templates; ${template.name} has no Go module`);
  }

  if (problems.length > 0) throw new UserErrors(problems, { hint: [...hints].join('; ') || undefined });

  const entry: ServiceEntry = {
    name: req.name,
    path: relPath,
    ports: allocatePorts(project, template.service.ports),
    sync: template.service.sync,
  };
  if (template.service.manifests !== undefined) entry.manifests = path.posix.join(relPath, template.service.manifests);
  if (template.service.target !== undefined) entry.target = template.service.target;

  const configFile = project.file;
  // null: there is no devloop.yaml yet; scaffold writes one (and removes it again if anything fails).
  const originalConfig = project.created ? null : await readFile(configFile, 'utf8');
  const newConfig = addServiceEntry(originalConfig ?? renderConfig(project.name, project.services), entry, displayPath(configFile));
  const vars: Record<string, string> = { name: req.name, image };
  if (module !== undefined) vars.module = module;
  const files = await renderTemplate(template, vars);

  const plan: ScaffoldPlan = { project, configFile, template, path: relPath, dir, entry, files, originalConfig, newConfig };
  if (module !== undefined) plan.module = module;
  if (moduleSource !== undefined) plan.moduleSource = moduleSource;
  return plan;
}

/**
 * Writes the planned service and registers it. The service is assembled in a hidden staging directory beside
 * its destination and moved into place in one rename; devloop.yaml is replaced atomically. Any failure undoes
 * what this run created, so a failed scaffold leaves the repository as it was.
 */
export async function executeScaffold(plan: ScaffoldPlan, onEvent: (e: ScaffoldEvent) => void = () => {}): Promise<ScaffoldResult> {
  const createdParents = await mkdirParents(path.dirname(plan.dir));
  let staging: string | undefined;
  let placed = false;
  let configWritten = false;
  try {
    // Claim the destination first: mkdir fails if anything appeared there since planning.
    try {
      await mkdir(plan.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
        throw new UserError(`${displayPath(plan.dir)} already exists; scaffold never writes into an existing path`);
      }
      throw err;
    }
    placed = true;
    staging = await mkdtemp(path.join(path.dirname(plan.dir), `.${path.basename(plan.dir)}.scaffold-`));
    for (const f of plan.files) {
      const target = path.join(staging, f.path);
      await mkdir(path.dirname(target), { recursive: true });
      await writeFile(target, f.content, { mode: f.mode });
    }
    onEvent({ kind: 'rendered', files: plan.files.length });
    for (const argv of plan.template.after) {
      onEvent({ kind: 'command', argv });
      await runAfter(argv, staging, plan.template.name);
    }
    // Replaces the empty directory claimed above.
    await rename(staging, plan.dir);
    staging = undefined;

    const current = await readFile(plan.configFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return null;
      throw err;
    });
    if (current !== plan.originalConfig) {
      throw new UserError(`${displayPath(plan.configFile)} changed while the service was being created`, { hint: 'scaffold again' });
    }
    if (plan.originalConfig === null) await writeFile(plan.configFile, plan.newConfig, { flag: 'wx' });
    else await replaceFile(plan.configFile, plan.newConfig);
    configWritten = true;
    onEvent({ kind: 'registered', configFile: plan.configFile });

    try {
      await loadProject(plan.project.root);
    } catch (err) {
      throw new InternalError(`the new service "${plan.entry.name}" makes ${displayPath(plan.configFile)} invalid: ${(err as Error).message}`, { cause: err });
    }
  } catch (err) {
    // Undo what this run made, best effort: the original error is what the user needs to see.
    if (configWritten) {
      if (plan.originalConfig === null) await rm(plan.configFile, { force: true }).catch(() => {});
      else await replaceFile(plan.configFile, plan.originalConfig).catch(() => {});
    }
    if (staging) await rm(staging, { recursive: true, force: true }).catch(() => {});
    if (placed) await rm(plan.dir, { recursive: true, force: true }).catch(() => {});
    for (const d of createdParents.reverse()) await rmdir(d).catch(() => {});
    throw err;
  }

  const notes: string[] = [];
  if (plan.originalConfig === null) {
    notes.push(`created ${displayPath(plan.configFile)} for project "${plan.project.name}" (named after the directory; change \`name:\` there to rename it)`);
  }
  if (plan.module !== undefined && (await existsNoFollow(path.join(plan.project.root, 'go.work')))) {
    notes.push(`the repository has a go.work: add the new module with \`go work use ./${plan.path}\``);
  }
  const result: ScaffoldResult = {
    name: plan.entry.name,
    template: plan.template.name,
    path: plan.path,
    dir: plan.dir,
    configFile: plan.configFile,
    entry: plan.entry,
    files: plan.files.length,
    notes,
  };
  if (plan.module !== undefined) result.module = plan.module;
  if (plan.moduleSource !== undefined) result.moduleSource = plan.moduleSource;
  return result;
}

/** Plans and executes: the whole of `devloop scaffold`. */
export async function scaffold(req: ScaffoldRequest, onEvent?: (e: ScaffoldEvent) => void): Promise<ScaffoldResult> {
  return executeScaffold(await planScaffold(req), onEvent);
}

async function runAfter(argv: string[], cwd: string, template: string): Promise<void> {
  const [file, ...args] = argv as [string, ...string[]];
  // GOWORK=off: a go.work elsewhere in the repository does not list the new module yet.
  const r = await execa(file, args, { cwd, reject: false, all: true, env: { GOWORK: 'off' } });
  if (r.code === 'ENOENT') {
    throw new UserError(`the ${template} template needs \`${file}\`, which is not on PATH`, {
      hint: file === 'go' ? 'install Go 1.26 or newer (https://go.dev/dl/) and scaffold again' : `install ${file} and scaffold again`,
    });
  }
  if (r.failed) {
    throw new ExternalError(`\`${argv.join(' ')}\` failed in the new service (exit ${r.exitCode ?? r.code}): ${String(r.all ?? '').trim().split('\n').slice(-5).join(' | ')}`, {
      hint: file === 'go' ? 'the Go module proxy (or GOPROXY/GOFLAGS settings) must be reachable to fetch the dependencies once' : undefined,
      detail: String(r.all ?? ''),
    });
  }
}

/** Creates the missing ancestors of `dir`; returns the ones it created, outermost first. */
async function mkdirParents(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = dir; !(await existsNoFollow(d)); d = path.dirname(d)) missing.unshift(d);
  for (const d of missing) await mkdir(d);
  return missing;
}

/** Replaces a file's content atomically (temp file + rename), keeping its permissions. */
async function replaceFile(file: string, content: string): Promise<void> {
  const { mode } = await stat(file);
  const temp = `${file}.${process.pid}.${Date.now()}.tmp`;
  try {
    await writeFile(temp, content, { mode: mode & 0o777 });
    await rename(temp, file);
  } catch (err) {
    // The temp file may not exist; the write's own error is the one to report.
    await rm(temp, { force: true }).catch(() => {});
    throw err;
  }
}


/**
 * The module prefix a repository's remote address implies: `git@github.com:org/repo.git` and
 * `https://github.com/org/repo` both give `github.com/org/repo`. Undefined without an origin or with a local one.
 */
export async function moduleFromRemote(root: string): Promise<string | undefined> {
  const r = await execa('git', ['remote', 'get-url', 'origin'], { cwd: root, reject: false });
  if (r.exitCode !== 0) return undefined;
  return modulePrefixOf(String(r.stdout).trim());
}

export function modulePrefixOf(url: string): string | undefined {
  const m = /^(?:[a-z+]+:\/\/)?(?:[^@/]+@)?([a-z0-9.-]+\.[a-z]{2,})(?::\d+)?[:/](.+?)(?:\.git)?\/?$/i.exec(url);
  if (!m) return undefined;
  const module = `${m[1]!.toLowerCase()}/${m[2]!}`;
  return goModuleProblem(module) ? undefined : module;
}
