import { describe, expect, it } from 'vitest';
import { runInDependencyOrder } from './schedule.js';

describe('runInDependencyOrder', () => {
  it('starts a node only after its dependencies and never exceeds the limit', async () => {
    const order: string[] = [];
    let active = 0;
    let maxActive = 0;
    const outcomes = await runInDependencyOrder(
      [
        { name: 'lib', dependsOn: [] },
        { name: 'api', dependsOn: ['lib'] },
        { name: 'web', dependsOn: ['api', 'elsewhere'] },
        { name: 'a', dependsOn: [] },
        { name: 'b', dependsOn: [] },
      ],
      2,
      async (name) => {
        active++;
        maxActive = Math.max(maxActive, active);
        order.push(`start ${name}`);
        await new Promise((r) => setImmediate(r));
        order.push(`end ${name}`);
        active--;
      },
    );
    expect(maxActive).toBe(2);
    expect(order.indexOf('start api')).toBeGreaterThan(order.indexOf('end lib'));
    expect(order.indexOf('start web')).toBeGreaterThan(order.indexOf('end api'));
    expect([...outcomes.values()].every((o) => o.status === 'succeeded')).toBe(true);
  });

  it('blocks the failed chain and lets the others finish', async () => {
    const blocked: string[] = [];
    const outcomes = await runInDependencyOrder(
      [
        { name: 'lib', dependsOn: [] },
        { name: 'api', dependsOn: ['lib'] },
        { name: 'web', dependsOn: ['api'] },
        { name: 'other', dependsOn: [] },
      ],
      4,
      async (name) => {
        if (name === 'lib') throw new Error('broken');
      },
      (name, because) => blocked.push(`${name}: ${because}`),
    );
    expect(outcomes.get('lib')?.status).toBe('failed');
    expect(outcomes.get('other')?.status).toBe('succeeded');
    expect(blocked).toEqual(['api: lib failed', 'web: api was not built']);
  });

  it('reports a cycle instead of hanging', async () => {
    const outcomes = await runInDependencyOrder(
      [
        { name: 'x', dependsOn: ['y'] },
        { name: 'y', dependsOn: ['x'] },
      ],
      2,
      async () => {},
    );
    expect(outcomes.get('x')).toEqual({ status: 'blocked', because: 'dependency cycle' });
  });
});
