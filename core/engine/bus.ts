/**
 * A small typed event bus that owns the state. Every published event goes through the reducer first, then to
 * subscribers; a subscriber that joins late receives the current state snapshot so it can draw without history.
 */
export type Reducer<S, E> = (state: S, event: E) => S;
export type Listener<S, E> = (event: E, state: S) => void;
export type SnapshotListener<S> = (state: S) => void;

export class EventBus<S, E> {
  private state: S;
  private readonly listeners = new Set<Listener<S, E>>();

  constructor(
    initial: S,
    private readonly reducer: Reducer<S, E>,
  ) {
    this.state = initial;
  }

  /** Registers `listener` for every later event; `onSnapshot` gets the current state right away. */
  subscribe(listener: Listener<S, E>, onSnapshot?: SnapshotListener<S>): () => void {
    this.listeners.add(listener);
    onSnapshot?.(this.state);
    return () => {
      this.listeners.delete(listener);
    };
  }

  publish(event: E): void {
    this.state = this.reducer(this.state, event);
    for (const listener of [...this.listeners]) {
      try {
        listener(event, this.state);
      } catch {
        // A broken renderer must not stop the engine.
      }
    }
  }

  snapshot(): S {
    return this.state;
  }
}
