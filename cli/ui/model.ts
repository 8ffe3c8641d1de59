/**
 * The dashboard's own state (selection, log pane, overlays, notices) and the pure reducer over user actions.
 * Engine state is never touched here: actions that ask the engine for work are carried out by the app, which calls
 * EngineCommands and then records the outcome as a notice.
 */
export interface Notice {
  text: string;
  level: 'info' | 'error';
  at: number;
}

export interface UiState {
  /** Index into the engine's service order. */
  selected: number;
  /** The log pane follows the selected service, or shows every service. */
  logs: 'all' | 'selected';
  help: boolean;
  /** Watching as last requested from this dashboard. */
  watching: boolean;
  quitting: boolean;
  notice?: Notice;
}

export const initialUiState: UiState = { selected: 0, logs: 'all', help: false, watching: true, quitting: false };

export type UiAction =
  | { type: 'select'; delta: number; count: number }
  | { type: 'toggle-logs' }
  | { type: 'toggle-help' }
  | { type: 'close-help' }
  | { type: 'watching'; on: boolean }
  | { type: 'notice'; text: string; level?: 'info' | 'error'; at: number }
  | { type: 'quit' };

export function uiReducer(state: UiState, action: UiAction): UiState {
  switch (action.type) {
    case 'select': {
      if (action.count <= 0) return { ...state, selected: 0 };
      // Wraps around, like the scaffold wizard's lists.
      const selected = (((state.selected + action.delta) % action.count) + action.count) % action.count;
      return { ...state, selected };
    }
    case 'toggle-logs':
      return { ...state, logs: state.logs === 'all' ? 'selected' : 'all' };
    case 'toggle-help':
      return { ...state, help: !state.help };
    case 'close-help':
      return state.help ? { ...state, help: false } : state;
    case 'watching':
      return { ...state, watching: action.on };
    case 'notice':
      return { ...state, notice: { text: action.text, level: action.level ?? 'info', at: action.at } };
    case 'quit':
      return { ...state, quitting: true, help: false };
  }
}

/** What a key press means; undefined for keys the dashboard does not use. */
export type KeyIntent = 'up' | 'down' | 'toggle-logs' | 'rebuild' | 'rebuild-all' | 'pause' | 'swap' | 'help' | 'close' | 'quit';

export interface KeyInfo {
  upArrow?: boolean;
  downArrow?: boolean;
  return?: boolean;
  escape?: boolean;
  ctrl?: boolean;
}

export function keyIntent(input: string, key: KeyInfo): KeyIntent | undefined {
  if (key.ctrl && input === 'c') return 'quit';
  if (key.upArrow || input === 'k') return 'up';
  if (key.downArrow || input === 'j') return 'down';
  if (key.return) return 'toggle-logs';
  if (key.escape) return 'close';
  switch (input) {
    case 'r':
      return 'rebuild';
    case 'a':
      return 'rebuild-all';
    case 'p':
      return 'pause';
    case 's':
      return 'swap';
    case '?':
      return 'help';
    case 'q':
      return 'quit';
    default:
      return undefined;
  }
}
