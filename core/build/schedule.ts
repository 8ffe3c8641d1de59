/**
 * Runs one task per node of a dependency graph: a node starts once everything it depends on succeeded, at most
 * `concurrency` at a time. A failed node blocks its dependents (transitively); independent nodes go on.
 */
export interface ScheduleNode {
  name: string;
  /** Names of nodes that must succeed first (names outside the graph are ignored). */
  dependsOn: string[];
}

export type ScheduleOutcome =
  | { status: 'succeeded' }
  | { status: 'failed'; error: unknown }
  | { status: 'blocked'; because: string };

export async function runInDependencyOrder(
  nodes: ScheduleNode[],
  concurrency: number,
  task: (name: string) => Promise<void>,
  onBlocked: (name: string, because: string) => void = () => {},
): Promise<Map<string, ScheduleOutcome>> {
  const names = new Set(nodes.map((n) => n.name));
  const deps = new Map(nodes.map((n) => [n.name, n.dependsOn.filter((d) => names.has(d) && d !== n.name)]));
  const outcomes = new Map<string, ScheduleOutcome>();
  const running = new Set<string>();
  const limit = Math.max(1, concurrency);

  return new Promise((resolve) => {
    const pump = () => {
      // Block every waiting node whose dependency failed or was blocked.
      let changed = true;
      while (changed) {
        changed = false;
        for (const n of nodes) {
          if (outcomes.has(n.name) || running.has(n.name)) continue;
          const bad = deps.get(n.name)!.find((d) => {
            const o = outcomes.get(d);
            return o !== undefined && o.status !== 'succeeded';
          });
          if (bad) {
            const because = `${bad} ${outcomes.get(bad)!.status === 'failed' ? 'failed' : 'was not built'}`;
            outcomes.set(n.name, { status: 'blocked', because });
            onBlocked(n.name, because);
            changed = true;
          }
        }
      }
      for (const n of nodes) {
        if (running.size >= limit) break;
        if (outcomes.has(n.name) || running.has(n.name)) continue;
        if (!deps.get(n.name)!.every((d) => outcomes.get(d)?.status === 'succeeded')) continue;
        running.add(n.name);
        task(n.name).then(
          () => finish(n.name, { status: 'succeeded' }),
          (error: unknown) => finish(n.name, { status: 'failed', error }),
        );
      }
      if (running.size === 0) {
        // Anything left waits on a cycle; report it instead of hanging.
        for (const n of nodes) {
          if (!outcomes.has(n.name)) {
            outcomes.set(n.name, { status: 'blocked', because: 'dependency cycle' });
            onBlocked(n.name, 'dependency cycle');
          }
        }
        resolve(outcomes);
      }
    };
    const finish = (name: string, outcome: ScheduleOutcome) => {
      running.delete(name);
      outcomes.set(name, outcome);
      pump();
    };
    pump();
  });
}
