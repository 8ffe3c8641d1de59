import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { render } from 'ink';
import { isWithin, normaliseRelPath } from '../../core/config/paths.js';
import { inferGoModule } from '../../core/scaffold/go-module.js';
import { goModuleProblem, serviceNameProblem } from '../../core/scaffold/names.js';
import { defaultServicePath, projectForScaffold } from '../../core/scaffold/scaffold.js';
import { listTemplates } from '../../core/scaffold/templates.js';
import { Wizard, type WizardAnswers } from './Wizard.js';

/**
 * Asks for the template, name, directory and (Go templates) module path in the terminal. Returns undefined
 * when the user cancels. The answers are checked again by the scaffold itself.
 */
export async function askScaffold(cwd: string, given: { path?: string; module?: string }): Promise<WizardAnswers | undefined> {
  const project = await projectForScaffold(cwd);
  const templates = (await listTemplates()).map((t) => ({ name: t.name, description: t.description, needsModule: !!t.variables.module }));
  const fromCwd = (p: string) => path.relative(project.root, path.resolve(cwd, p)).split(path.sep).join('/');
  let answers: WizardAnswers | undefined;
  const app = render(
    <Wizard
      templates={templates}
      given={given}
      nameProblem={(name) =>
        serviceNameProblem(name) ?? (project.services.some((s) => s.name === name) ? `a service named "${name}" already exists` : undefined)
      }
      defaultPath={(name) => defaultServicePath(project, name)}
      pathProblem={async (p) => {
        const n = normaliseRelPath(p);
        if ('error' in n) return n.error;
        if (n.path === '') return 'the service needs its own directory';
        const inside = project.services.find((s) => s.path !== '' && isWithin(n.path, s.path));
        if (inside) return `inside the directory of service "${inside.name}"`;
        const exists = await lstat(path.join(project.root, n.path)).then(() => true, () => false);
        return exists ? `${n.path} already exists` : undefined;
      }}
      defaultModule={async (p) => (await inferGoModule(project.root, p === given.path ? fromCwd(p) : p))?.module}
      moduleProblem={goModuleProblem}
      onDone={(a) => {
        answers = a;
      }}
    />,
  );
  await app.waitUntilExit();
  if (!answers) return undefined;
  // The directory was asked relative to the project root (a --path is relative to cwd, as the request takes it).
  const repoRel = given.path === undefined ? answers.path : fromCwd(given.path);
  if (given.path === undefined) answers.path = path.relative(cwd, path.join(project.root, answers.path)) || '.';
  // A module path left as the repository's convention gave it is inferred again, so the report names its source.
  if (answers.module !== undefined && given.module === undefined && answers.module === (await inferGoModule(project.root, repoRel))?.module) {
    delete answers.module;
  }
  return answers;
}
