import { render } from 'ink-testing-library';
import { describe, expect, it, vi } from 'vitest';
import { Wizard, type WizardAnswers, type WizardProps } from './Wizard.js';

const ENTER = '\r';
const DOWN = '\u001b[B';
const ESC = '\u001b';

function setup(given: WizardProps['given'] = {}) {
  let answers: WizardAnswers | undefined | 'pending' = 'pending';
  const app = render(
    <Wizard
      templates={[
        { name: 'go-grpc', description: 'Go gRPC service', needsModule: true },
        { name: 'node-http', description: 'Node HTTP service', needsModule: false },
      ]}
      nameProblem={(n) => (n === 'api' ? 'a service named "api" already exists' : /^[a-z][a-z0-9-]*$/.test(n) ? undefined : 'bad name')}
      defaultPath={(n) => `services/${n}`}
      pathProblem={async (p) => (p.startsWith('services/api') ? 'inside the directory of service "api"' : undefined)}
      defaultModule={async (p) => `github.com/acme/shop/${p}`}
      moduleProblem={(m) => (m.includes(' ') ? 'bad module' : undefined)}
      given={given}
      onDone={(a) => {
        answers = a;
      }}
    />,
  );
  /**
   * Types `keys`, then waits until the screen shows `expected`. ink attaches input handlers in effects, which run
   * after the frame is drawn: a short pause lets the new question listen before the next keys arrive.
   */
  const type = async (keys: string, expected: string | RegExp) => {
    await new Promise((resolve) => setTimeout(resolve, 50));
    for (const k of keys === ENTER || keys === DOWN || keys === ESC ? [keys] : [...keys]) app.stdin.write(k);
    await vi.waitFor(() => expect(app.lastFrame()).toMatch(expected));
  };
  return { app, type, answers: () => answers };
}

describe('scaffold wizard', () => {
  it('asks template, name, directory and module, offering the defaults', async () => {
    const { app, type, answers } = setup();
    expect(app.lastFrame()).toMatch(/❯ go-grpc\s+Go gRPC service/);
    await type(DOWN, /❯ node-http/);
    await type(DOWN, /❯ go-grpc/); // wraps around
    await type(ENTER, /Service name:/);
    await type('api', /Service name: api/);
    await type(ENTER, /a service named "api" already exists/);
    await type('\u007f\u007f\u007f', /Service name:\s*$/m); // backspace ×3
    await type('orders', /Service name: orders/);
    await type(ENTER, /Directory \(from the project root\): services\/orders/);
    await type(ENTER, /Go module path: github\.com\/acme\/shop\/services\/orders/);
    await type(ENTER, /./);
    await vi.waitFor(() => expect(answers()).toEqual({ template: 'go-grpc', name: 'orders', path: 'services/orders', module: 'github.com/acme/shop/services/orders' }));
  });

  it('skips the questions answered by flags and the module for non-Go templates', async () => {
    const { type, answers } = setup({ path: 'apps/web' });
    await type(DOWN, /❯ node-http/);
    await type(ENTER, /Service name:/);
    await type('web', /Service name: web/);
    await type(ENTER, /./);
    await vi.waitFor(() => expect(answers()).toEqual({ template: 'node-http', name: 'web', path: 'apps/web' }));
  });

  it('takes pasted text that ends with a line break as typed and confirmed', async () => {
    const { app, type, answers } = setup({ path: 'apps/web' });
    await type(DOWN, /❯ node-http/);
    await type(ENTER, /Service name:/);
    await new Promise((resolve) => setTimeout(resolve, 50));
    app.stdin.write('web\n');
    await vi.waitFor(() => expect(answers()).toEqual({ template: 'node-http', name: 'web', path: 'apps/web' }));
  });

  it('esc cancels', async () => {
    const { app, answers } = setup();
    await new Promise((resolve) => setTimeout(resolve, 50));
    app.stdin.write(ESC);
    await vi.waitFor(() => expect(answers()).toBeUndefined());
  });
});
