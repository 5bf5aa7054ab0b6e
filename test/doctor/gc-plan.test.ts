import { describe, it, expect } from 'vitest';
import { planGc } from '../../src/doctor/gc-plan.ts';
import { intentEvent } from '../../src/events/step-events.ts';
import { baseState, facts, thing, layer, layerKey, manifest, poolStatus, OS, POOL_DEV } from './fixtures.ts';
import type { EngineState } from '../../src/model/engine-state.ts';
import { chainLayers, chainHex } from '../../src/plan/layer-chain.ts';
import { thingKey } from '../../src/domain/names.ts';

const ops = (plan: ReturnType<typeof planGc>) => plan.steps.map((s) => `${s.op} ${s.target}`);

const OLD = layerKey('os', 'old');
const OLDER = layerKey('os', 'old', 'older');

/** The log also holds layers `old` (child of os) and `older` (child of old), which the manifest dropped. */
function withDroppedLayers(): EngineState {
  const s = baseState();
  const old = layer(['os', 'old'], 3);
  const older = layer(['os', 'old', 'older'], 4, 'activated');
  return { ...s, things: { ...s.things, [old.key]: old, [older.key]: older } };
}

/** The manifest's os now has a source: the recorded content names its layer by the source's diff id. */
function withSourcedOs(): EngineState {
  const desired = manifest(['os'], [{ name: 'web', layer: 'os' }]);
  desired.layers[0] = { ...desired.layers[0], source: 'os.tar' };
  const content = chainLayers(desired, { os: [{ kind: 'tar', path: '/src/os.tar', diffId: `sha256:${'a'.repeat(64)}`, sizeBytes: 10240 }] });
  return { ...baseState(), desired, content };
}

/** The log also created these thin ids (and no longer records them). */
function createdAlso(s: EngineState, ...ids: number[]): EngineState {
  return { ...s, pool: { ...s.pool!, createdIds: [0, 1, 2, ...ids] } };
}

describe('what gc collects', () => {
  it('deletes orphans this log created in id order through orphan.delete, and nothing else in a clean pool', () => {
    const plan = planGc(facts({ state: createdAlso(baseState(), 7, 42), thinIds: [0, 1, 2, 42, 7] }));
    expect(plan.blockers).toEqual([]);
    expect(ops(plan)).toEqual(['orphan.delete thin:7', 'orphan.delete thin:42']);
    expect(plan.steps[0]).toMatchObject({ impact: 'destroy', args: { thinId: 7 } });
    expect(planGc(facts()).steps).toEqual([]);
  });

  it('deletes layers the manifest no longer lists, children first, an active one through its live device', () => {
    const state = withDroppedLayers();
    const live = { [state.things['device:web'].dmName]: 2, [state.things[OLDER].dmName]: 4 };
    const plan = planGc(facts({ state, live, thinIds: [0, 1, 2, 3, 4] }));
    // The delete step discards through the live device and removes it itself: no deactivate first.
    expect(ops(plan)).toEqual([`thin.delete ${OLDER}`, `thin.delete ${OLD}`]);
    expect(plan.steps[0].args).toMatchObject({ thinId: 4, discard: true });
    expect(plan.steps[1].reason).toContain(`layer old (${OLD.slice('layer:'.length)})`);
  });

  it('keeps every layer the manifest lists, used by a device or not', () => {
    const s = withDroppedLayers();
    const state = { ...s, desired: manifest(['os', 'old', 'older'], [{ name: 'web', layer: 'os' }]) };
    expect(planGc(facts({ state, thinIds: [0, 1, 2, 3, 4] })).steps).toEqual([]);
  });

  it('judges layers by the recorded content: a layer whose source changed is no longer listed', () => {
    const state = withSourcedOs();
    const sourced = layer(['os'], 3, 'created', { key: thingKey('layer', chainHex(state.content!.top.os)) });
    state.things = { ...state.things, [sourced.key]: sourced };
    const plan = planGc(facts({ state, thinIds: [0, 1, 2, 3] }));
    expect(ops(plan)).toEqual([`thin.delete ${OS}`]); // os as it was when empty; the sourced os stays
    expect(sourced.key).not.toBe(OS);
  });

  it('leaves layers alone when the log holds a sourced manifest without its content', () => {
    const state = { ...withDroppedLayers(), desired: withSourcedOs().desired, content: null };
    const plan = planGc(facts({ state: createdAlso(state, 3, 4, 9), thinIds: [0, 1, 2, 3, 4, 9] }));
    expect(ops(plan)).toEqual(['orphan.delete thin:9']);
    expect(plan.skipped).toEqual([{ subject: 'layers', reason: expect.stringContaining('run `thinlayer apply` first') }]);
  });

  it('forgets a thing whose thin id is gone, without a discard, unless its device is live', () => {
    const plan = planGc(facts({ thinIds: [0, 2] }));
    expect(ops(plan)).toEqual([`thin.delete ${OS}`]);
    expect(plan.steps[0].args).toMatchObject({ thinId: 1, discard: false });
    const live = planGc(facts({ thinIds: [0, 1] }));
    expect(live.steps).toEqual([]);
    expect(live.skipped).toEqual([{ subject: 'device:web', reason: expect.stringContaining('thinlayer down') }]);
  });

  it('leaves a thin id this log did not create to be named, and deletes a named one alone', () => {
    const plan = planGc(facts({ state: createdAlso(baseState(), 7), thinIds: [0, 1, 2, 7, 8] }));
    expect(ops(plan)).toEqual(['orphan.delete thin:7']);
    expect(plan.skipped).toEqual([{ subject: 'thin:8', reason: expect.stringContaining('thinlayer gc --thin-id 8') }]);
    const named = planGc(facts({ thinIds: [0, 1, 2, 7, 8] }), { thinId: 8 });
    expect(ops(named)).toEqual(['orphan.delete thin:8']);
    expect(named.steps[0]).toMatchObject({ impact: 'destroy', args: { thinId: 8, named: true } });
    expect(planGc(facts({ thinIds: [0, 1, 2] }), { thinId: 8 }).blockers.join()).toMatch(/holds no thin id 8/);
    expect(planGc(facts({ thinIds: [0, 1, 2] }), { thinId: 1 }).blockers.join()).toMatch(/is layer os .* in the log/);
  });

  it('deletes nothing while the pool is ahead of the log, named or not', () => {
    const behind = { thinIds: [0, 1, 2, 7], status: poolStatus({ transactionId: 9 }) };
    for (const request of [{}, { thinId: 7 }]) {
      const plan = planGc(facts({ state: createdAlso(baseState(), 7), ...behind }), request);
      expect(plan.steps).toEqual([]);
      expect(plan.blockers.join()).toMatch(/transaction id is 9 but this log recorded 5.*gc --keep-foreign/);
    }
  });

  it('removes an unknown owned device before deleting the orphan it maps; leaves open and foreign ones', () => {
    const ghost = {
      name: 'thinlayer-demo-dev-ghost',
      uuid: 'thinlayer-demo-dev-ghost',
      owned: true,
      liveTable: true,
      openCount: 0,
      thin: { pool: POOL_DEV, thinId: 50 },
    };
    const busy = { ...ghost, name: 'thinlayer-demo-dev-busy', uuid: 'thinlayer-demo-dev-busy', openCount: 1, thin: { pool: POOL_DEV, thinId: 51 } };
    const theirs = { name: 'theirs', uuid: '', owned: false, liveTable: true, openCount: 0, thin: { pool: POOL_DEV, thinId: 52 } };
    const plan = planGc(facts({ state: createdAlso(baseState(), 50, 51, 52), thinIds: [0, 1, 2, 50, 51, 52], extraOwned: [ghost, busy], foreign: [theirs] }));
    expect(ops(plan)).toEqual(['thin.deactivate dm:thinlayer-demo-dev-ghost', 'orphan.delete thin:50']);
    expect(plan.skipped.map((s) => s.subject)).toEqual(['dm:thinlayer-demo-dev-busy', 'thin:51', 'thin:52']);
  });

  it('settles interrupted orphan deletes first, by their fence', () => {
    const state = { ...baseState(), pending: { 'r:1': { ...intentEvent('orphan.delete', 'r:1', 'thin:99', { thinId: 99 }, 5), seq: 41 } } };
    const plan = planGc(facts({ state, thinIds: [0, 1, 2, 99] }));
    expect(plan.settle).toEqual([{ stepId: 'r:1', thinId: 99, txid: 5 }]);
    expect(ops(plan)).toEqual(['orphan.delete thin:99']);
  });

  it.each<[string, Parameters<typeof facts>[0], RegExp]>([
    ['the pool is down', { status: null, live: {} }, /not active: run `thinlayer up` first/],
    ['the pool needs a check', { status: poolStatus({ needsCheck: true }) }, /needs_check/],
    ['the pool is read-only', { status: poolStatus({ mode: 'ro' }) }, /read-only/],
    ['the thin ids cannot be read', { thinIds: null }, /could not be read/],
    [
      'another step was interrupted',
      {
        state: {
          ...baseState(),
          pending: { 'r:1': { ...intentEvent('thin.deactivate', 'r:1', 'device:web', { dmName: 'thinlayer-demo-device-web' }), seq: 41 } },
        },
      },
      /run `thinlayer up` first/,
    ],
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
