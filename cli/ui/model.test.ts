import { describe, expect, it } from 'vitest';
import { initialUiState, keyIntent, uiReducer } from './model.js';

describe('dashboard state', () => {
  it('moves the selection with wrap-around and never past an empty list', () => {
    let s = uiReducer(initialUiState, { type: 'select', delta: 1, count: 3 });
    expect(s.selected).toBe(1);
    s = uiReducer(s, { type: 'select', delta: 2, count: 3 });
    expect(s.selected).toBe(0);
    s = uiReducer(s, { type: 'select', delta: -1, count: 3 });
    expect(s.selected).toBe(2);
    expect(uiReducer(s, { type: 'select', delta: 1, count: 0 }).selected).toBe(0);
  });

  it('toggles the log pane and the help overlay; Esc only closes', () => {
    let s = uiReducer(initialUiState, { type: 'toggle-logs' });
    expect(s.logs).toBe('selected');
    expect(uiReducer(s, { type: 'toggle-logs' }).logs).toBe('all');
    s = uiReducer(s, { type: 'toggle-help' });
    expect(s.help).toBe(true);
    s = uiReducer(s, { type: 'close-help' });
    expect(s.help).toBe(false);
    expect(uiReducer(s, { type: 'close-help' })).toBe(s);
  });

  it('records notices, watching and quitting without touching anything else', () => {
    const s = uiReducer(initialUiState, { type: 'notice', text: 'rebuild requested: web', at: 5 });
    expect(s.notice).toEqual({ text: 'rebuild requested: web', level: 'info', at: 5 });
    expect(uiReducer(s, { type: 'watching', on: false }).watching).toBe(false);
    expect(uiReducer({ ...s, help: true }, { type: 'quit' })).toMatchObject({ quitting: true, help: false, notice: s.notice });
    expect(initialUiState).toEqual({ selected: 0, logs: 'all', help: false, watching: true, quitting: false });
  });

  it('maps keys to intents', () => {
    expect(keyIntent('', { upArrow: true })).toBe('up');
    expect(keyIntent('j', {})).toBe('down');
    expect(keyIntent('\r', { return: true })).toBe('toggle-logs');
    expect(keyIntent('c', { ctrl: true })).toBe('quit');
    expect(keyIntent('c', {})).toBeUndefined();
    expect(['r', 'a', 'p', 's', '?', 'q'].map((k) => keyIntent(k, {}))).toEqual(['rebuild', 'rebuild-all', 'pause', 'swap', 'help', 'quit']);
    expect(keyIntent('', { escape: true })).toBe('close');
  });
});
