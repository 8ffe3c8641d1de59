import { render } from 'ink-testing-library';
import { describe, expect, it } from 'vitest';
import { EngineBus } from '../../core/engine/state.js';
import { Activity } from './activity.js';
import { Dashboard, fit } from './components.js';
import { initialUiState, type UiState } from './model.js';
import { emitSampleRun } from './testing.js';
import { buildView } from './view.js';

function frame(columns: number, rows: number, opts: { ui?: Partial<UiState>; color?: boolean } = {}): string {
  const activity = new Activity({ ports: { orders: ['8080:8080'], web: ['3000:80'] } });
  const bus = new EngineBus();
  bus.subscribe((e) => activity.record(e));
  emitSampleRun(bus);
  const view = buildView({
    engine: bus.snapshot(),
    activity,
    ui: { ...initialUiState, ...opts.ui },
    header: { command: 'up', target: 'remote', context: 'dev', namespace: 'shop-alice', developer: 'alice', registry: '127.0.0.1:5000' },
    size: { columns, rows },
    now: 0,
    color: opts.color ?? false,
    interactive: true,
  });
  const app = render(<Dashboard view={view} />);
  const out = app.lastFrame() ?? '';
  app.unmount();
  return out;
}

const ANSI = /\u001b\[[0-9;]*m/;

describe('Dashboard', () => {
  it('draws header, rows, the failed service’s error, the log pane and key hints within 80×24', () => {
    const out = frame(80, 24);
    const lines = out.split('\n');
    expect(lines.length).toBeLessThanOrEqual(23);
    expect(Math.max(...lines.map((l) => [...l].length))).toBeLessThanOrEqual(80);
    expect(lines[0]).toMatch(/^devloop up\s+● first pass$/);
    expect(lines[1]).toBe('context dev · namespace shop-alice · developer alice · registry 127.0.0.1:5000');
    expect(lines[2]).toMatch(/SERVICE\s+STATE\s+TAG\s+BUILD\s+DEPLOY\s+PODS\s+PORTS/);
    expect(out).toMatch(/❯ orders\s+ready\s+3f2a9c1b7e\s+12\.3s\s+4\.1s\s+1\/1\s+8080/);
    expect(out).toMatch(/ {2}web\s+building 3\/7 ██░░░\s+9b8c7d6e5f/);
    expect(out).toMatch(/payments\s+✗ failed/);
    expect(out).toMatch(/\n {4}build failed at Step 4\/6 : RUN go build/);
    expect(out).toMatch(/catalog\s+queued/);
    expect(out).toMatch(/─ logs · all services ─+/);
    expect(out).toMatch(/payments │ \.\/main\.go:12:2: undefined: handler/);
    expect(lines.at(-1)).toMatch(/^↑↓ select {2}⏎ logs {2}r rebuild/);
    expect(out).not.toMatch(ANSI);
  });

  it('shows the help overlay in place of the logs', () => {
    const out = frame(80, 24, { ui: { help: true } });
    expect(out).toMatch(/─ keys ─/);
    expect(out).toMatch(/r\s+rebuild and redeploy the selected service/);
    expect(out).toMatch(/q {2}Ctrl-C\s+quit/);
    expect(out).not.toMatch(/main\.go/);
  });

  it('shows only the selected service’s log lines, without the name prefix', () => {
    const out = frame(100, 30, { ui: { logs: 'selected', selected: 2 } });
    expect(out).toMatch(/❯ payments/);
    expect(out).toMatch(/─ logs · payments ─/);
    expect(out).toMatch(/\n\.\/main\.go:12:2: undefined: handler/);
    expect(out).not.toMatch(/orders\s+│/);
  });

  it('stays inside small and wide terminals', () => {
    for (const [columns, rows] of [[50, 12], [140, 40]] as const) {
      const lines = frame(columns, rows).split('\n');
      expect(lines.length).toBeLessThanOrEqual(rows - 1);
      expect(Math.max(...lines.map((l) => [...l].length))).toBeLessThanOrEqual(columns);
      expect(lines.join('\n')).toMatch(/❯ orders\s+ready/);
    }
  });

  it('uses colour only when asked (NO_COLOR turns it off), in a terminal that has colour', async () => {
    // Ink colours through chalk, which sees no colour terminal under test: give it one, as a real terminal would.
    const { default: chalk } = await import('chalk');
    const level = chalk.level;
    chalk.level = 1;
    try {
      expect(frame(80, 24, { color: true })).toMatch(/\u001b\[31m✗ failed/);
      // Without colour only bold remains (NO_COLOR is about colour, not emphasis).
      expect(frame(80, 24, { color: false })).not.toMatch(/\u001b\[(3\d|4\d|9\d|2)m/);
    } finally {
      chalk.level = level;
    }
  });
});

describe('fit', () => {
  it('pads short cells and cuts long ones with an ellipsis, keeping a space before the next', () => {
    expect(fit('web', 6)).toBe('web   ');
    expect(fit('payments-gateway', 8)).toBe('paymen… ');
    expect(fit('abcde', 5)).toBe('abc… ');
    expect(fit('x', 0)).toBe('');
  });
});
