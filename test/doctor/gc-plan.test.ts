import { describe, it, expect } from 'vitest';
import { planGc } from '../../src/doctor/gc-plan.ts';
import { baseState, facts, thing, manifest, poolStatus, POOL_DEV } from './fixtures.ts';
import type { EngineState } from '../../src/lifecycle/projection.ts';

const ops = (plan: ReturnType<typeof planGc>) => plan.steps.map((s) => `${s.op} ${s.target}`);

/** The log also holds layers `old` (child of os) and `older` (child of old), which the manifest dropped. */
function withDroppedLayers(): EngineState {
  const s = baseState();
  const old = thing('layer:old', 3, 'layer:os');
  const older = thing('layer:older', 4, 'layer:old', 'activated');
  return { ...s, things: { ...s.things, [old.key]: old, [older.key]: older } };
}

describe('what gc collects', () => {
  it('deletes orphans in id order through orphan.delete, and nothing else in a clean pool', () => {
    const plan = planGc(facts({ thinIds: [0, 1, 2, 42, 7] }));
    expect(plan.blockers).toEqual([]);
    expect(ops(plan)).toEqual(['orphan.delete thin:7', 'orphan.delete thin:42']);
    expect(plan.steps[0]).toMatchObject({ impact: 'destroy', args: { thinId: 7 } });
    expect(planGc(facts()).steps).toEqual([]);
  });

  it('deletes layers the manifest no longer lists, children first, deactivating an active one', () => {
    const state = withDroppedLayers();
    const live = { [state.things['device:web'].dmName]: 2, [state.things['layer:older'].dmName]: 4 };
    const plan = planGc(facts({ state, live, thinIds: [0, 1, 2, 3, 4] }));
    expect(ops(plan)).toEqual(['thin.deactivate layer:older', 'thin.delete layer:older', 'thin.delete layer:old']);
    expect(plan.steps[1].args).toMatchObject({ thinId: 4, discard: true });
  });

  it('keeps every layer the manifest lists, used by a device or not', () => {
    const s = withDroppedLayers();
    const state = { ...s, desired: manifest(['os', 'old', 'older'], [{ name: 'web', layer: 'os' }]) };
    expect(planGc(facts({ state, thinIds: [0, 1, 2, 3, 4] })).steps).toEqual([]);
  });

  it('forgets a thing whose thin id is gone, without a discard, unless its device is live', () => {
    const plan = planGc(facts({ thinIds: [0, 2] }));
    expect(ops(plan)).toEqual(['thin.delete layer:os']);
    expect(plan.steps[0].args).toMatchObject({ thinId: 1, discard: false });
    const live = planGc(facts({ thinIds: [0, 1] }));
    expect(live.steps).toEqual([]);
    expect(live.skipped).toEqual([{ subject: 'device:web', reason: expect.stringContaining('thinlayer down') }]);
  });

  it('removes an unknown owned device before deleting the orphan it maps; leaves open and foreign ones', () => {
    const ghost = { name: 'thinlayer-demo-dev-ghost', uuid: 'thinlayer-demo-dev-ghost', owned: true, liveTable: true, openCount: 0, thin: { pool: POOL_DEV, thinId: 50 } };
    const busy = { ...ghost, name: 'thinlayer-demo-dev-busy', uuid: 'thinlayer-demo-dev-busy', openCount: 1, thin: { pool: POOL_DEV, thinId: 51 } };
    const theirs = { name: 'theirs', uuid: '', owned: false, liveTable: true, openCount: 0, thin: { pool: POOL_DEV, thinId: 52 } };
    const plan = planGc(facts({ thinIds: [0, 1, 2, 50, 51, 52], extraOwned: [ghost, busy], foreign: [theirs] }));
    expect(ops(plan)).toEqual(['thin.deactivate dm:thinlayer-demo-dev-ghost', 'orphan.delete thin:50']);
    expect(plan.skipped.map((s) => s.subject)).toEqual(['dm:thinlayer-demo-dev-busy', 'thin:51', 'thin:52']);
  });

  it('settles interrupted orphan deletes first, by their fence', () => {
    const state = { ...baseState(), pending: { 'r:1': { type: 'step.intent' as const, stepId: 'r:1', op: 'orphan.delete', target: 'thin:99', args: { thinId: 99 }, txid: 5, seq: 41 } } };
    const plan = planGc(facts({ state, thinIds: [0, 1, 2, 99] }));
    expect(plan.settle).toEqual([{ stepId: 'r:1', thinId: 99, txid: 5 }]);
    expect(ops(plan)).toEqual(['orphan.delete thin:99']);
  });

  it.each<[string, Parameters<typeof facts>[0], RegExp]>([
    ['the pool is down', { status: null, live: {} }, /not active: run `thinlayer up` first/],
    ['the pool needs a check', { status: poolStatus({ needsCheck: true }) }, /needs_check/],
    ['the pool is read-only', { status: poolStatus({ mode: 'ro' }) }, /read-only/],
    ['the thin ids cannot be read', { thinIds: null }, /could not be read/],
    ['another step was interrupted', { state: { ...baseState(), pending: { 'r:1': { type: 'step.intent', stepId: 'r:1', op: 'snap.create', target: 'device:web', args: {}, txid: 5, seq: 41 } } } }, /run `thinlayer up` first/],
    ['nothing is recorded', { state: { ...baseState(), pool: null } }, /no pool is recorded/],
  ])('refuses when %s', (_name, opts, message) => {
    const plan = planGc(facts({ thinIds: [0, 1, 2, 99], ...opts }));
    expect(plan.steps).toEqual([]);
    expect(plan.blockers.join('\n')).toMatch(message);
  });

  it('refuses a pool device whose uuid is not the one the log created', () => {
    const f = facts({ thinIds: [0, 1, 2, 99] });
    f.observed.pool!.info = { ...f.observed.pool!.info, uuid: 'thinlayer-demo-pool-x' };
    expect(planGc(f).blockers.join()).toMatch(/gc touches only the pool thinlayer owns/);
  });
});
