import { describe, it, expect } from 'vitest';
import { currentPool, currentPoolSpec } from '../../src/lifecycle/current-pool.ts';
import { sameDesired, desiredDigestOf } from '../../src/plan/desired-state.ts';
import { chainLayers } from '../../src/plan/layer-chain.ts';
import { dmIdentity } from '../../src/domain/names.ts';
import { manifest } from '../engine/fixtures.ts';

describe('which pool is current', () => {
  it('is the desired pool, else the last one asked for, else none', () => {
    const m = manifest();
    const other = { ...m, pool: { ...m.pool, name: 'other' } };
    expect(currentPoolSpec({ desired: m, poolSpec: other.pool })?.name).toBe('demo');
    expect(currentPoolSpec({ desired: null, poolSpec: other.pool })?.name).toBe('other');
    expect(currentPoolSpec({ desired: m, poolSpec: null }, other)?.name).toBe('other');
    expect(currentPool({ desired: null, poolSpec: null, identity: null, pool: null })).toBeNull();
    expect(currentPool({ desired: m, poolSpec: null, identity: null, pool: null })).toEqual({ spec: m.pool, ...dmIdentity('demo', 'pool') });
    // With this state dir's identity in its uuid; once recorded, as the log recorded it.
    expect(currentPool({ desired: m, poolSpec: null, identity: 'abc123', pool: null })).toEqual({
      spec: m.pool,
      ...dmIdentity('demo', 'pool', undefined, 'abc123'),
    });
    const recorded = { name: 'demo', dmName: 'thinlayer-demo-pool', uuid: 'thinlayer-recorded-uuid' };
    expect(currentPool({ desired: m, poolSpec: null, identity: 'abc123', pool: recorded })).toEqual({
      spec: m.pool,
      dmName: recorded.dmName,
      uuid: recorded.uuid,
    });
  });
});

describe('comparing desired states', () => {
  it('by digest: equal content in different objects is the same state, any change is not', () => {
    const a = manifest();
    const b = structuredClone(a);
    expect(sameDesired(a, b)).toBe(true);
    const moved = { ...b, devices: [{ ...b.devices[0], mountpoint: '/srv/elsewhere' }, ...b.devices.slice(1)] };
    expect(sameDesired(a, moved)).toBe(false);
    expect(sameDesired(null, undefined)).toBe(true);
    expect(sameDesired(a, null)).toBe(false);
    expect(sameDesired(chainLayers(a), chainLayers(structuredClone(a)))).toBe(true);
    expect(desiredDigestOf(a)).toMatch(/^[0-9a-f]{64}$/);
  });
});
