/**
 * Finds dependency cycles in a directed graph given as node → successors. Each cycle is returned once, as the
 * list of nodes along it with the first node repeated at the end (a → b → a), starting from the node that comes
 * first in `nodes` order so messages are stable.
 */
export function findCycles(nodes: readonly string[], edges: ReadonlyMap<string, readonly string[]>): string[][] {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const seen = new Set<string>();

  const visit = (node: string): void => {
    state.set(node, 'visiting');
    stack.push(node);
    for (const next of edges.get(node) ?? []) {
      const s = state.get(next);
      if (s === 'visiting') {
        const cycle = stack.slice(stack.indexOf(next));
        const key = [...cycle].sort().join('\0');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push([...rotateToFirst(cycle, nodes), rotateToFirst(cycle, nodes)[0]!]);
        }
      } else if (s === undefined) {
        visit(next);
      }
    }
    stack.pop();
    state.set(node, 'done');
  };

  for (const n of nodes) if (!state.has(n)) visit(n);
  return cycles;
}

function rotateToFirst(cycle: string[], order: readonly string[]): string[] {
  let best = 0;
  for (let i = 1; i < cycle.length; i++) {
    if (order.indexOf(cycle[i]!) < order.indexOf(cycle[best]!)) best = i;
  }
  return [...cycle.slice(best), ...cycle.slice(0, best)];
}

/**
 * Topological order (dependencies first), stable with respect to `nodes` order. Assumes no cycles (check
 * with findCycles first); nodes on a cycle are appended at the end.
 */
export function topologicalOrder(nodes: readonly string[], edges: ReadonlyMap<string, readonly string[]>): string[] {
  const out: string[] = [];
  const placed = new Set<string>();
  const visiting = new Set<string>();
  const visit = (n: string): void => {
    if (placed.has(n) || visiting.has(n)) return;
    visiting.add(n);
    for (const d of edges.get(n) ?? []) visit(d);
    visiting.delete(n);
    placed.add(n);
    out.push(n);
  };
  for (const n of nodes) visit(n);
  return out;
}
