import { describe, it, expect } from 'vitest';
import { initialState } from '../../src/lifecycle/projection.ts';
import { project, evolve } from '../../src/lifecycle/fold.ts';
import { dmIdentity } from '../../src/domain/names.ts';
import { manifest, stamp, createArgs, snapArgs, stepEvents } from './fixtures.ts';
import type { StepArgs } from '../../src/model/step-contract.ts';
import { intentEvent, doneEvent } from '../../src/events/step-events.ts';

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

  it('records a layer whose commit failed as failed, until it is committed; a resize records the new size to grow into', () => {
    const baseRef = { key: 'base', thinId: 0, dmName: base.dmName };
    const layer = snapArgs('layer', 'abc', 1, baseRef, { sizeBytes: 1 << 30, ready: false });
    const commit: StepArgs<'layer.commit'> = {
      dmName: layer.dmName,
      uuid: layer.uuid,
      thinId: 1,
      sizeBytes: 1 << 30,
      filesystem: 'ext4',
      content: { kind: 'dir', path: '/src', diffId: 'sha256:1', sizeBytes: 0 },
      chainId: 'sha256:1',
      allowDevices: false,
      label: 'abc',
    };
    const made = project(
      stamp([
        intentEvent('snap.create', 'r:0', 'layer:abc', layer, 0),
        doneEvent('snap.create', 'r:0', 'layer:abc', { txid: 1, ready: false }),
        intentEvent('layer.commit', 'r:1', 'layer:abc', commit),
        { type: 'step.failed', stepId: 'r:1', op: 'layer.commit', target: 'layer:abc', error: { code: 'E_LAYER_CONTENT', message: 'entry "x": bad' } },
      ]),
    );
    expect(made.things['layer:abc']).toMatchObject({ ready: false, failed: 'entry "x": bad' });
    const committed = project(
      stamp(
        [
          intentEvent('layer.commit', 'r:2', 'layer:abc', commit),
          doneEvent('layer.commit', 'r:2', 'layer:abc', { digest: 'sha256:1', diffId: 'sha256:1', files: 0, bytes: 0 }),
        ],
        5,
      ),
      made,
    );
    expect(committed.things['layer:abc'].ready).toBe(true);
    expect(committed.things['layer:abc'].failed).toBeUndefined();
    const device = snapArgs('device', 'app', 2, { key: 'layer:abc', thinId: 1, dmName: layer.dmName }, { sizeBytes: 1 << 30, ready: true });
    const resized = project(
      stamp(
        [
          intentEvent('snap.create', 'r:3', 'device:app', device, 1),
          doneEvent('snap.create', 'r:3', 'device:app', { txid: 2, ready: true }),
          intentEvent('thin.resize', 'r:4', 'device:app', {
            dmName: device.dmName,
            uuid: device.uuid,
            thinId: 2,
            fromBytes: 1 << 30,
            sizeBytes: 2 << 30,
            live: false,
          }),
          doneEvent('thin.resize', 'r:4', 'device:app', { sizeBytes: 2 << 30 }),
        ],
        7,
      ),
      committed,
    );
    expect(resized.things['device:app']).toMatchObject({ sizeBytes: 2 << 30, ready: false });
  });

  it('records the desired manifest and the pool spec', () => {
    const s = project(stamp([{ type: 'desired.set', manifest: manifest(), source: 'apply' }]));
    expect(s.desired?.pool.name).toBe('demo');
    expect(s.poolSpec?.name).toBe('demo');
    expect(s.lastSeq).toBe(1);
  });

  it('keeps the pool spec after destroy is asked, until the files are gone', () => {
    let s = project(
      stamp([
        { type: 'desired.set', manifest: manifest(), source: 'apply' },
        { type: 'desired.set', manifest: null, source: 'destroy' },
      ]),
    );
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

  it('settles an intent in doubt by a recovery note, taking the device state observed then', () => {
    // thin.activate was cut short by a crash after the kernel call; a later deactivate could not
    // move the lifecycle out of 'activating', so its DONE would have recorded the device as active.
    const events = stamp([
      createBase(),
      baseCreated(),
      intentEvent('thin.activate', 'r:1', 'base', base),
      intentEvent('thin.deactivate', 's:0', 'base', { dmName: base.dmName }),
      doneEvent('thin.deactivate', 's:0', 'base', {}),
    ]);
    const before = project(events);
    expect(Object.keys(before.pending)).toEqual(['r:1']);
    expect(before.things.base.lifecycle.state).toBe('activated');
    const settled = project(
      stamp(
        [
          {
            type: 'recovery.note',
            kind: 'intent-resolved',
            detail: { stepId: 'r:1', op: 'thin.activate', target: 'base', runId: 's', observed: 'created', mountpoint: null },
          },
        ],
        6,
      ),
      before,
    );
    expect(settled.pending).toEqual({});
    expect(settled.things.base.lifecycle.state).toBe('created');
    // Without an observed state (a create in doubt), only the intent is settled.
    const doubt = project(stamp([createBase()]));
    const kept = project(
      stamp([{ type: 'recovery.note', kind: 'intent-resolved', detail: { stepId: 'r:0', op: 'thin.create', target: 'base', runId: 's' } }], 2),
      doubt,
    );
    expect(kept.pending).toEqual({});
    expect(kept.things.base.lifecycle.state).toBe('creating');
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
        ...stepEvents(
          'pool.activate',
          'pool',
          {
            pool: 'demo',
            ...dmIdentity('demo', 'pool'),
            blockSizeBytes: 65536,
            noSpaceTimeoutSeconds: 60,
            data: manifest().pool.data,
            metadata: manifest().pool.metadata,
            blank: true,
          },
          { txid: 0, poolTxid: 0, dataBlocks: 16, lowWater: 1 },
          { id: 'p' },
        ),
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
    const events = stamp([{ type: 'desired.set', manifest: manifest(), source: 'apply' }, createBase(), baseCreated()]);
    const whole = project(events);
    const halves = project(events.slice(1), evolve(initialState(), events[0]));
    expect(halves).toEqual(whole);
  });
});
