import { describe, expect, it } from 'vitest';
import { RingBuffer } from './ring.js';

describe('RingBuffer', () => {
  it('keeps only the newest items, oldest first, however many are pushed', () => {
    const ring = new RingBuffer<number>(3);
    expect(ring.tail(5)).toEqual([]);
    for (let i = 1; i <= 10_000; i++) ring.push(i);
    expect(ring.size).toBe(3);
    expect(ring.total).toBe(10_000);
    expect(ring.tail(10)).toEqual([9998, 9999, 10_000]);
    expect(ring.tail(2)).toEqual([9999, 10_000]);
    expect(ring.tail(0)).toEqual([]);
  });

  it('returns what it has before it is full, and empties on clear', () => {
    const ring = new RingBuffer<string>(4);
    ring.push('a');
    ring.push('b');
    expect(ring.tail(4)).toEqual(['a', 'b']);
    ring.clear();
    expect(ring.tail(4)).toEqual([]);
    ring.push('c');
    expect(ring.tail(1)).toEqual(['c']);
  });

  it('refuses a capacity that is not a positive integer', () => {
    expect(() => new RingBuffer(0)).toThrow(/positive integer/);
  });
});
