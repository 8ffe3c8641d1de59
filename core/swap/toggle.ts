import { UserError } from '../errors.js';
import type { Reporter, Target, TargetContext } from '../target/target.js';
import type { SwapSession } from './session.js';

/**
 * Swaps started and stopped from a running `devloop up` (the dashboard's `s` key): one key press swaps the service,
 * the next restores it. Every swap is owned here: its end is reported, and stopAll() restores them all.
 */
export class SwapToggles {
  private readonly sessions = new Map<string, Promise<SwapSession | undefined>>();
  /** Restores under way (a second key press): stopAll() waits for them too. */
  private readonly restoring = new Set<Promise<void>>();

  constructor(
    private readonly target: Target,
    private readonly ctx: () => TargetContext,
    private readonly report: Reporter,
  ) {}

  /** Starts swapping `service`, or restores it when it is swapped; throws a UserError where swap cannot work. */
  toggle(service: string): void {
    const swapContext = this.target.swapContext?.(this.ctx(), this.report);
    if (!swapContext) throw new UserError(`swap needs a Kubernetes target, and this one is ${this.target.where}`, { hint: 'run devloop up with a kube context' });
    const running = this.sessions.get(service);
    if (running) {
      this.sessions.delete(service);
      const restore: Promise<void> = running
        .then((s) => s?.stop())
        .catch((err: unknown) => this.report({ type: 'swap.failed', service, message: err instanceof Error ? err.message : String(err) }))
        .finally(() => this.restoring.delete(restore));
      this.restoring.add(restore);
      return;
    }
    const starting = import('./session.js')
      .then(({ SwapSession }) => SwapSession.start(swapContext, { name: service, ports: [] }))
      .then(
        (session) => {
          // A listener, not a task: `ended` never rejects, and the session it watches is owned by this map.
          session.ended.then(
            () => {
              if (this.sessions.get(service) === starting) this.sessions.delete(service);
            },
            () => undefined,
          );
          return session;
        },
        (err: unknown) => {
          this.sessions.delete(service);
          this.report({ type: 'swap.failed', service, message: err instanceof Error ? err.message : String(err) });
          return undefined;
        },
      );
    this.sessions.set(service, starting);
  }

  /** Restores every swapped service (devloop up is stopping). */
  async stopAll(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all([...all.map(async (p) => (await p)?.stop()), ...this.restoring]);
  }
}
