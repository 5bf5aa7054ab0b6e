import { describe, expect, it } from 'vitest';
import { backoffDelay, backoffForInterval, DEFAULT_BACKOFF } from '../../src/watch/backoff.ts';

describe('backoff', () => {
  const policy = { baseMs: 100, maxMs: 1000, factor: 2, jitter: 0 };

  it('doubles from the base delay and stops at the ceiling', () => {
    expect([1, 2, 3, 4, 5, 6].map((n) => backoffDelay(n, policy))).toEqual([100, 200, 400, 800, 1000, 1000]);
  });

  it('waits nothing before any failure and never overflows after very many', () => {
    expect(backoffDelay(0, policy)).toBe(0);
    expect(backoffDelay(10_000, policy)).toBe(1000);
  });

  it('spreads the delay by the jitter, within the ceiling', () => {
    const jittery = { ...policy, jitter: 0.5 };
    expect(backoffDelay(1, jittery, 0)).toBe(75);
    expect(backoffDelay(1, jittery, 0.5)).toBe(100);
    expect(backoffDelay(1, jittery, 0.999)).toBe(125);
    expect(backoffDelay(9, jittery, 0.999)).toBe(1000);
  });

  it('scales to the drift interval: a first retry well within one interval', () => {
    expect(backoffForInterval(30_000)).toMatchObject({ baseMs: 1000, maxMs: 120_000 });
    expect(backoffForInterval(50)).toMatchObject({ baseMs: 10, maxMs: 200 });
    expect(backoffForInterval(24 * 3_600_000).maxMs).toBe(DEFAULT_BACKOFF.maxMs);
  });
});
