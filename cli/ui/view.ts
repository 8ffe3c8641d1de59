import type { EngineState, ServiceState } from '../../core/engine/state.js';
import type { TargetKind } from '../../core/engine/events.js';
import type { Activity, LogKind } from './activity.js';
import type { UiState } from './model.js';

/** Where the session runs, shown in the header; gathered once when the dashboard starts. */
export interface HeaderInfo {
  command: string;
  target?: TargetKind;
  context?: string;
  namespace?: string;
  developer?: string;
  registry?: string;
}

export type Tone = 'plain' | 'dim' | 'busy' | 'good' | 'bad' | 'warn';

export interface ServiceRow {
  name: string;
  selected: boolean;
  state: string;
  tone: Tone;
  /** Build steps or pods done of total, drawn as a bar after the state. */
  progress?: { done: number; total: number };
  tag: string;
  build: string;
  deploy: string;
  pods: string;
  ports: string;
  /** The last error, one line, while the service is failed. */
  error?: string;
}

export interface ViewLogLine {
  /** The service's name in the "all services" pane; absent for a single service's pane. */
  service?: string;
  text: string;
  kind: LogKind;
}

export interface ColumnWidths {
  name: number;
  state: number;
  tag: number;
  build: number;
  deploy: number;
  pods: number;
  ports: number;
}

/** Everything the components draw, already fitted to the terminal: plain data, serialisable. */
export interface DashboardView {
  width: number;
  height: number;
  color: boolean;
  title: string;
  status: { text: string; tone: Tone };
  target: string;
  columns: ColumnWidths;
  rows: ServiceRow[];
  hiddenAbove: number;
  hiddenBelow: number;
  empty?: string;
  /** A run-wide problem (devloop.yaml not reloaded), one red line under the header. */
  banner?: string;
  pane: { title: string; lines: ViewLogLine[] } | { title: string; help: string[][] };
  footer: { text: string; tone: Tone };
  /** When this view changes by itself (a notice or a "synced" state expiring): the app draws again then. */
  refreshAt?: number;
}

export interface ViewInput {
  engine: EngineState;
  activity: Activity;
  ui: UiState;
  header: HeaderInfo;
  size: { columns: number; rows: number };
  now: number;
  color: boolean;
  /** False when no engine commands exist (one pass, `up --once`): keys that ask for work say so. */
  interactive: boolean;
}

/** How long a notice stays in the footer. */
export const NOTICE_MS = 5000;
const MARKER = 2;
const BAR = 6;
export const MIN_COLUMNS = 40;
export const MIN_ROWS = 10;

export const HELP: string[][] = [
  ['↑/↓ j/k', 'select a service'],
  ['Enter', 'show the selected service’s logs / all logs'],
  ['r', 'rebuild and redeploy the selected service'],
  ['a', 'rebuild and redeploy every service'],
  ['p', 'pause / resume watching for changes'],
  ['s', 'swap the selected service to a local process'],
  ['?  Esc', 'show / close this help'],
  ['q  Ctrl-C', 'quit (with --cleanup, also remove what was deployed)'],
];

export const KEY_HINTS = '↑↓ select  ⏎ logs  r rebuild  a all  p pause  s swap  ? help  q quit';
/** During a single pass only looking around works. */
export const KEY_HINTS_ONE_PASS = '↑↓ select  ⏎ logs  ? help  q quit';

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '–';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** Forwards as the engine reports them ("127.0.0.1:8080 → pod/web-1:80", or "127.0.0.1:8080: error"); failed ones get a ✗. */
export function formatForwards(forwards: Record<string, string>): string {
  return Object.entries(forwards)
    .map(([local, description]) => {
      const ok = /→ .*:(\d+)$/.exec(description);
      if (!ok) return `${local}✗`;
      return ok[1] === local ? local : `${local}→${ok[1]}`;
    })
    .join(',');
}

/** How long "synced n files" stays in the state column after a sync. */
export const SYNCED_MS = 3000;

export function formatPorts(ports: string[]): string {
  return ports.map((p) => {
    const [local, remote] = p.split(':');
    return remote === undefined || remote === local ? String(local) : `${local}→${remote}`;
  }).join(',');
}

function parseStep(step: string | undefined): { done: number; total: number } | undefined {
  const m = /^(\d+)\/(\d+)$/.exec(step ?? '');
  return m ? { done: Number(m[1]), total: Number(m[2]) } : undefined;
}

const FAILED_PHASES = new Set(['build-failed', 'deliver-failed', 'deploy-failed', 'rollout-failed', 'blocked']);

/** The row's state column: the engine phase in the words the dashboard uses. */
export function describePhase(s: ServiceState, target: TargetKind | undefined, deliverySteps: number, now = 0): Pick<ServiceRow, 'state' | 'tone' | 'progress'> {
  const pods = s.desired !== undefined && s.desired > 0 ? { done: s.ready ?? 0, total: s.desired } : undefined;
  switch (s.phase) {
    case 'pending':
      return { state: 'queued', tone: 'dim' };
    case 'current':
    case 'ready': {
      const sync = s.sync;
      if (sync?.state === 'synced' && sync.lastAt !== undefined && now - sync.lastAt < SYNCED_MS) {
        const n = sync.lastFiles ?? 0;
        return { state: `synced ${n} file${n === 1 ? '' : 's'}`, tone: 'good' };
      }
      return { state: 'ready', tone: 'good' };
    }
    case 'building': {
      const progress = parseStep(s.step);
      return { state: progress ? `building ${s.step}` : 'building', tone: 'busy', ...(progress ? { progress } : {}) };
    }
    case 'built':
      return { state: 'built', tone: 'busy' };
    case 'delivering': {
      const verb = target === 'remote' ? 'pushing' : 'loading';
      const unit = target === 'remote' ? 'layer' : 'step';
      return { state: deliverySteps > 0 ? `${verb} ${deliverySteps} ${unit}${deliverySteps === 1 ? '' : 's'}` : verb, tone: 'busy' };
    }
    case 'delivered':
    case 'deploying':
      return { state: 'deploying', tone: 'busy' };
    case 'rolling-out':
      return { state: 'deploying', tone: 'busy', ...(pods ? { progress: pods } : {}) };
    case 'blocked':
      return { state: 'blocked', tone: 'bad' };
    case 'build-failed':
    case 'deliver-failed':
    case 'deploy-failed':
    case 'rollout-failed':
      return { state: 'failed', tone: 'bad' };
    default: {
      // Phases added to the engine later (syncing, swapped, ...) show as they are named.
      const phase = String(s.phase);
      return { state: phase, tone: /fail/.test(phase) ? 'bad' : /ing$/.test(phase) ? 'busy' : 'good' };
    }
  }
}

/** Name and state always; then pods, build time, tag, deploy time as room allows; ports take the rest. */
function columnWidths(width: number, names: string[]): ColumnWidths {
  const longest = Math.max(7, ...names.map((n) => n.length));
  const w: ColumnWidths = { name: Math.min(longest + 2, 26), state: 16 + BAR, tag: 0, build: 0, deploy: 0, pods: 0, ports: 0 };
  let rest = width - MARKER - w.name - w.state;
  if (rest < 0) {
    w.name = Math.max(8, w.name + rest);
    rest = width - MARKER - w.name - w.state;
  }
  for (const [column, size] of [['pods', 7], ['build', 8], ['tag', 12], ['deploy', 8]] as const) {
    if (rest >= size) {
      w[column] = size;
      rest -= size;
    }
  }
  w.ports = rest >= 6 ? rest : 0;
  return w;
}

/** Which rows fit: all of them, or a window (one line kept for "n more") that contains the selected row. */
function windowRows(costs: number[], selected: number, budget: number): [number, number] {
  const total = costs.reduce((a, b) => a + b, 0);
  if (total <= budget) return [0, costs.length];
  const room = Math.max(1, budget - 1);
  let start = 0;
  for (;;) {
    let used = 0;
    let end = start;
    while (end < costs.length && used + costs[end]! <= room) used += costs[end++]!;
    if (end === start) end = start + 1;
    if (selected < end || end >= costs.length) return [start, end];
    start++;
  }
}

function headerTarget(h: HeaderInfo, where: string | undefined, width: number): string {
  const describe = (short: boolean) => {
    const parts: string[] = [];
    if (h.target === 'docker') parts.push('local Docker');
    else {
      if (h.context) parts.push(`${short ? 'ctx' : 'context'} ${h.context}`);
      if (h.namespace) parts.push(`${short ? 'ns' : 'namespace'} ${h.namespace}`);
      if (!h.context && !h.namespace && where) parts.push(where);
    }
    if (h.developer) parts.push(`${short ? 'dev' : 'developer'} ${h.developer}`);
    if (h.registry) parts.push(`registry ${h.registry}`);
    return parts.join(' · ');
  };
  const long = describe(false);
  return [...long].length <= width ? long : describe(true);
}

/** The running loop as the engine reports it; what was asked from this dashboard until the engine has said. */
function loopStatus(engine: EngineState, ui: UiState): DashboardView['status'] {
  const loop = engine.loop;
  if (!(loop ? loop.watching : ui.watching)) return { text: '❚❚ paused', tone: 'warn' };
  if (loop?.updating.length) return { text: `● updating ${loop.updating.join(', ')}`, tone: 'busy' };
  if (!loop && !engine.finished) return { text: '● first pass', tone: 'busy' };
  return { text: '● watching', tone: 'good' };
}

/** Pure: the dashboard for this engine state, activity, dashboard state and terminal size. */
export function buildView(input: ViewInput): DashboardView {
  const { engine, activity, ui, header, now, color } = input;
  const width = Math.max(MIN_COLUMNS, input.size.columns);
  // The last row stays free: a frame as tall as the terminal makes it scroll.
  const height = Math.max(MIN_ROWS, input.size.rows) - 1;
  const names = engine.order;
  const selectedIndex = Math.min(ui.selected, Math.max(0, names.length - 1));
  const selectedName = names[selectedIndex];

  const status: DashboardView['status'] = ui.quitting
    ? { text: 'stopping…', tone: 'warn' }
    : engine.finished && !input.interactive
      ? engine.finished.ok
        ? { text: `✓ done in ${formatDuration(engine.finished.durationMs)}`, tone: 'good' }
        : { text: `✗ failed: ${engine.finished.failed.join(', ')}`, tone: 'bad' }
      : !input.interactive
        ? { text: '● running', tone: 'busy' }
        : loopStatus(engine, ui);

  const expires: number[] = [];
  const allRows: ServiceRow[] = names.map((name, i) => {
    const s = engine.services[name]!;
    const a = activity.service(name);
    const phase: Pick<ServiceRow, 'state' | 'tone' | 'progress'> = a.swap
      ? { state: `swapped${a.swap.personal ? ' (your key)' : ''} → ${a.swap.local} · ${a.swap.requests} req`, tone: 'good' }
      : describePhase(s, engine.target ?? header.target, s.deliverySteps ?? 0, now);
    if (phase.state.startsWith('synced') && s.sync?.lastAt !== undefined) expires.push(s.sync.lastAt + SYNCED_MS);
    const error = FAILED_PHASES.has(s.phase)
      ? s.problem
      : s.sync?.state === 'failed' || (s.sync?.problem && s.sync.state !== 'synced')
        ? `sync failed: ${s.sync.problem ?? 'unknown error'}`
        : a.lastError;
    return {
      name,
      selected: i === selectedIndex,
      ...phase,
      tag: s.version ? s.version.slice(0, 10) : '–',
      build: formatDuration(s.lastBuildMs),
      deploy: formatDuration(s.lastDeployMs),
      pods: s.desired !== undefined ? `${s.ready ?? 0}/${s.desired}` : '–',
      ports: s.forwards && Object.keys(s.forwards).length ? formatForwards(s.forwards) : a.ports.length ? formatPorts(a.ports) : '–',
      ...(error ? { error } : {}),
    };
  });

  const banner = engine.loop?.configProblem ? `devloop.yaml not reloaded: ${engine.loop.configProblem}` : undefined;
  // Fixed lines: two header lines, the table heading, the pane title and the footer (and the banner).
  const fixedLines = banner ? 6 : 5;
  const minPane = Math.min(8, Math.max(2, height - fixedLines - 3));
  const tableBudget = Math.max(1, height - fixedLines - minPane);
  const [start, end] = windowRows(allRows.map((r) => (r.error ? 2 : 1)), selectedIndex, tableBudget);
  const rows = allRows.slice(start, end);
  const hiddenAbove = start;
  const hiddenBelow = allRows.length - end;
  const tableLines = rows.reduce((n, r) => n + (r.error ? 2 : 1), 0) + (hiddenAbove + hiddenBelow > 0 ? 1 : 0) + (rows.length === 0 ? 1 : 0);
  const paneLines = Math.max(1, height - fixedLines - tableLines);

  let pane: DashboardView['pane'];
  if (ui.help) {
    pane = { title: 'keys', help: HELP.slice(0, paneLines) };
  } else {
    const one = ui.logs === 'selected' && selectedName !== undefined ? selectedName : undefined;
    const lines = activity.tail(one, paneLines).map((l): ViewLogLine => ({
      ...(one === undefined && l.service !== undefined ? { service: l.service } : {}),
      // Cut to the width here: Ink measures every character it is given, and log lines can be long.
      text: l.text.length > width ? l.text.slice(0, width) : l.text,
      kind: l.kind,
    }));
    pane = { title: one ? `logs · ${one}` : 'logs · all services', lines };
  }

  const notice = ui.notice && now - ui.notice.at < NOTICE_MS ? ui.notice : undefined;
  if (notice) expires.push(notice.at + NOTICE_MS);
  const footer: DashboardView['footer'] = ui.quitting
    ? { text: 'stopping watchers, syncs and forwards…', tone: 'warn' }
    : notice
      ? { text: notice.text, tone: notice.level === 'error' ? 'bad' : 'plain' }
      : { text: input.interactive ? KEY_HINTS : KEY_HINTS_ONE_PASS, tone: 'dim' };

  return {
    width,
    height,
    color,
    title: `devloop ${header.command}`,
    status,
    target: headerTarget(header, engine.where, width),
    columns: columnWidths(width, names),
    rows,
    hiddenAbove,
    hiddenBelow,
    ...(names.length === 0 ? { empty: engine.finished ? 'no services' : 'planning…' } : {}),
    ...(banner ? { banner } : {}),
    ...(expires.length ? { refreshAt: Math.min(...expires) } : {}),
    pane,
    footer,
  };
}
