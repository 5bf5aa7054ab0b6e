import { describe, it, expect } from 'vitest';
import { project, evolve, initialState } from '../../src/lifecycle/projection.ts';
import { dmIdentity } from '../../src/domain/names.ts';
import { manifest, stamp, createArgs, stepEvents } from './fixtures.ts';
import { intentEvent, doneEvent } from '../../src/events/types.ts';

const base = createArgs('base', 'base', 0, 1 << 30);
const createBase = (txid = 0, args = base) => intentEvent('thin.create', 'r:0', 'base', args, txid);
const baseCreated = (txid = 1) => doneEvent('thin.create', 'r:0', 'base', { txid });

describe('projection', () => {
  it('evolve and project leave the state they start from as it was', () => {
    const created = project(stamp([createBase()]));
    const frozen = structuredClone(created);
    const done = stamp([baseCreated()], 2);
    const next = evolve(created, done[0]);
    const projected = project(done, created);
    expect(created).toEqual(frozen);
    expect(next.things.base.lifecycle.state).toBe('created');
    expect(projected).toEqual(next);
    expect(next.pending).toEqual({});
  });

  it('records the desired manifest and the pool spec', () => {
    const s = project(stamp([{ type: 'desired.set', manifest: manifest(), source: 'apply' }]));
    expect(s.desired?.pool.name).toBe('demo');
    expect(s.poolSpec?.name).toBe('demo');
    expect(s.lastSeq).toBe(1);
  });

  it('keeps the pool spec after destroy is asked, until the files are gone', () => {
    let s = project(stamp([{ type: 'desired.set', manifest: manifest(), source: 'apply' }, { type: 'desired.set', manifest: null, source: 'destroy' }]));
    expect(s.desired).toBeNull();
    expect(s.poolSpec?.name).toBe('demo');
    s = project(stamp(stepEvents('pool.delete-files', 'pool', { files: ['/s/data.img', '/s/metadata.img'] }, {}, { id: 'a' }), 3), s);
    expect(s.poolSpec).toBeNull();
    expect(s.pool).toBeNull();
  });

  it('marks an intent without an outcome as pending, and the device as creating', () => {
    const s = project(stamp([createBase()]));
    expect(Object.keys(s.pending)).toEqual(['r:0']);
    expect(s.things.base.lifecycle.state).toBe('creating');
    expect(s.things.base.thinId).toBe(0);
  });

  it('moves a device through its lifecycle as steps complete', () => {
    const s = project(
      stamp([
        createBase(),
        baseCreated(),
        ...stepEvents('thin.activate', 'base', base, { major: 253, minor: 1, devPath: '/dev/dm-1' }, { id: 'r:1' }),
        ...stepEvents('fs.mkfs', 'base', { dmName: base.dmName, filesystem: 'ext4' }, {}, { id: 'r:2' }),
      ]),
    );
    expect(s.things.base.lifecycle.state).toBe('activated');
    expect(s.things.base.ready).toBe(true);
    expect(s.pending).toEqual({});
  });

  it('records a failure with its error', () => {
    const s = project(
      stamp([
        createBase(),
        { type: 'step.failed', stepId: 'r:0', op: 'thin.create', target: 'base', error: { code: 'E_KERNEL', message: 'dm.message demo: ENOSPC' } },
      ]),
    );
    expect(s.things.base.lifecycle).toEqual({ state: 'failed', from: 'absent', error: 'dm.message demo: ENOSPC' });
    expect(s.pending).toEqual({});
  });

  it('forgets a deleted device but never lowers the next thin id', () => {
    const s = project(
      stamp([
        ...stepEvents('pool.activate', 'pool', { pool: 'demo', ...dmIdentity('demo', 'pool'), blockSizeBytes: 65536, noSpaceTimeoutSeconds: 60, data: manifest().pool.data, metadata: manifest().pool.metadata, blank: true }, { txid: 0, dataBlocks: 16, lowWater: 1 }, { id: 'p' }),
        createBase(0, { ...base, thinId: 7 }),
        baseCreated(),
        ...stepEvents('thin.delete', 'base', { ...base, thinId: 7, discard: true }, { txid: 2 }, { id: 'r:1', txid: 1 }),
      ]),
    );
    expect(s.things).toEqual({});
    expect(s.pool?.nextThinId).toBe(8);
    expect(s.pool?.txid).toBe(2);
    expect(s.pool?.formatted).toBe(true);
  });

  it('is a pure fold: replaying in two halves gives the same state as in one go', () => {
    const events = stamp([
      { type: 'desired.set', manifest: manifest(), source: 'apply' },
      createBase(),
      baseCreated(),
    ]);
    const whole = project(events);
    const halves = project(events.slice(1), evolve(initialState(), events[0]));
    expect(halves).toEqual(whole);
  });
});
