import { describe, it, expect } from 'vitest';
import { project, evolve, initialState } from '../../src/lifecycle/projection.ts';
import { dmIdentity } from '../../src/domain/names.ts';
import { manifest, stamp } from './fixtures.ts';

const base = { kind: 'base', name: 'base', thinId: 0, origin: null, sizeBytes: 1 << 30, ...dmIdentity('demo', 'base') };

describe('projection', () => {
  it('evolve and project leave the state they start from as it was', () => {
    const created = project(stamp([{ type: 'step.intent', stepId: 'r:0', op: 'thin.create', target: 'base', args: base, txid: 0 }]));
    const frozen = structuredClone(created);
    const done = stamp([{ type: 'step.done', stepId: 'r:0', op: 'thin.create', target: 'base', result: { txid: 1 } }], 2);
    const next = evolve(created, done[0]);
    const projected = project(done, created);
    expect(created).toEqual(frozen);
    expect(next.things.base.lifecycle.state).toBe('created');
    expect(projected).toEqual(next);
    expect(next.pending).toEqual({});
  });

  it('records a layer whose commit failed as failed, until it is committed; a resize records the new size to grow into', () => {
    const layer = { kind: 'layer', name: 'abc', thinId: 1, origin: 'base', sizeBytes: 1 << 30, ...dmIdentity('demo', 'layer', 'abc') };
    const made = project(stamp([
      { type: 'step.intent', stepId: 'r:0', op: 'snap.create', target: 'layer:abc', args: layer, txid: 0 },
      { type: 'step.done', stepId: 'r:0', op: 'snap.create', target: 'layer:abc', result: { txid: 1 } },
      { type: 'step.intent', stepId: 'r:1', op: 'layer.commit', target: 'layer:abc', args: {} },
      { type: 'step.failed', stepId: 'r:1', op: 'layer.commit', target: 'layer:abc', error: { code: 'E_LAYER_CONTENT', message: 'entry "x": bad' } },
    ]));
    expect(made.things['layer:abc']).toMatchObject({ ready: false, failed: 'entry "x": bad' });
    const committed = project(stamp([
      { type: 'step.intent', stepId: 'r:2', op: 'layer.commit', target: 'layer:abc', args: {} },
      { type: 'step.done', stepId: 'r:2', op: 'layer.commit', target: 'layer:abc', result: { digest: 'sha256:1' } },
    ], 5), made);
    expect(committed.things['layer:abc'].ready).toBe(true);
    expect(committed.things['layer:abc'].failed).toBeUndefined();
    const device = { kind: 'device', name: 'app', thinId: 2, origin: 'layer:abc', sizeBytes: 1 << 30, ...dmIdentity('demo', 'device', 'app') };
    const resized = project(stamp([
      { type: 'step.intent', stepId: 'r:3', op: 'snap.create', target: 'device:app', args: device, txid: 1 },
      { type: 'step.done', stepId: 'r:3', op: 'snap.create', target: 'device:app', result: { txid: 2, ready: true } },
      { type: 'step.intent', stepId: 'r:4', op: 'thin.resize', target: 'device:app', args: { sizeBytes: 2 << 30 } },
      { type: 'step.done', stepId: 'r:4', op: 'thin.resize', target: 'device:app', result: { sizeBytes: 2 << 30 } },
    ], 7), committed);
    expect(resized.things['device:app']).toMatchObject({ sizeBytes: 2 << 30, ready: false });
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
    s = project(stamp([{ type: 'step.intent', stepId: 'a', op: 'pool.delete-files', target: 'pool', args: {} }, { type: 'step.done', stepId: 'a', op: 'pool.delete-files', target: 'pool', result: {} }], 3), s);
    expect(s.poolSpec).toBeNull();
    expect(s.pool).toBeNull();
  });

  it('marks an intent without an outcome as pending, and the device as creating', () => {
    const s = project(stamp([{ type: 'step.intent', stepId: 'r:0', op: 'thin.create', target: 'base', args: base, txid: 0 }]));
    expect(Object.keys(s.pending)).toEqual(['r:0']);
    expect(s.things.base.lifecycle.state).toBe('creating');
    expect(s.things.base.thinId).toBe(0);
  });

  it('settles an intent in doubt by a recovery note, taking the device state observed then', () => {
    // thin.activate was cut short by a crash after the kernel call; a later deactivate could not
    // move the lifecycle out of 'activating', so its DONE would have recorded the device as active.
    const events = stamp([
      { type: 'step.intent', stepId: 'r:0', op: 'thin.create', target: 'base', args: base, txid: 0 },
      { type: 'step.done', stepId: 'r:0', op: 'thin.create', target: 'base', result: { txid: 1 } },
      { type: 'step.intent', stepId: 'r:1', op: 'thin.activate', target: 'base', args: {} },
      { type: 'step.intent', stepId: 's:0', op: 'thin.deactivate', target: 'base', args: {} },
      { type: 'step.done', stepId: 's:0', op: 'thin.deactivate', target: 'base', result: {} },
    ]);
    const before = project(events);
    expect(Object.keys(before.pending)).toEqual(['r:1']);
    expect(before.things.base.lifecycle.state).toBe('activated');
    const settled = project(stamp([{ type: 'recovery.note', kind: 'intent-resolved', detail: { stepId: 'r:1', op: 'thin.activate', target: 'base', runId: 's', observed: 'created', mountpoint: null } }], 6), before);
    expect(settled.pending).toEqual({});
    expect(settled.things.base.lifecycle.state).toBe('created');
    // Without an observed state (a create in doubt), only the intent is settled.
    const doubt = project(stamp([{ type: 'step.intent', stepId: 'r:0', op: 'thin.create', target: 'base', args: base, txid: 0 }]));
    const kept = project(stamp([{ type: 'recovery.note', kind: 'intent-resolved', detail: { stepId: 'r:0', op: 'thin.create', target: 'base', runId: 's' } }], 2), doubt);
    expect(kept.pending).toEqual({});
    expect(kept.things.base.lifecycle.state).toBe('creating');
  });

  it('moves a device through its lifecycle as steps complete', () => {
    const s = project(
      stamp([
        { type: 'step.intent', stepId: 'r:0', op: 'thin.create', target: 'base', args: base, txid: 0 },
        { type: 'step.done', stepId: 'r:0', op: 'thin.create', target: 'base', result: { txid: 1 } },
        { type: 'step.intent', stepId: 'r:1', op: 'thin.activate', target: 'base', args: {} },
        { type: 'step.done', stepId: 'r:1', op: 'thin.activate', target: 'base', result: {} },
        { type: 'step.intent', stepId: 'r:2', op: 'fs.mkfs', target: 'base', args: {} },
        { type: 'step.done', stepId: 'r:2', op: 'fs.mkfs', target: 'base', result: {} },
      ]),
    );
    expect(s.things.base.lifecycle.state).toBe('activated');
    expect(s.things.base.ready).toBe(true);
    expect(s.pending).toEqual({});
  });

  it('records a failure with its error', () => {
    const s = project(
      stamp([
        { type: 'step.intent', stepId: 'r:0', op: 'thin.create', target: 'base', args: base, txid: 0 },
        { type: 'step.failed', stepId: 'r:0', op: 'thin.create', target: 'base', error: { code: 'E_KERNEL', message: 'dm.message demo: ENOSPC' } },
      ]),
    );
    expect(s.things.base.lifecycle).toEqual({ state: 'failed', from: 'absent', error: 'dm.message demo: ENOSPC' });
    expect(s.pending).toEqual({});
  });

  it('forgets a deleted device but never lowers the next thin id', () => {
    const s = project(
      stamp([
        { type: 'step.intent', stepId: 'p', op: 'pool.activate', target: 'pool', args: { pool: 'demo', ...dmIdentity('demo', 'pool') } },
        { type: 'step.done', stepId: 'p', op: 'pool.activate', target: 'pool', result: { txid: 0 } },
        { type: 'step.intent', stepId: 'r:0', op: 'thin.create', target: 'base', args: { ...base, thinId: 7 }, txid: 0 },
        { type: 'step.done', stepId: 'r:0', op: 'thin.create', target: 'base', result: { txid: 1 } },
        { type: 'step.intent', stepId: 'r:1', op: 'thin.delete', target: 'base', args: {}, txid: 1 },
        { type: 'step.done', stepId: 'r:1', op: 'thin.delete', target: 'base', result: { txid: 2 } },
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
      { type: 'step.intent', stepId: 'r:0', op: 'thin.create', target: 'base', args: base, txid: 0 },
      { type: 'step.done', stepId: 'r:0', op: 'thin.create', target: 'base', result: { txid: 1 } },
    ]);
    const whole = project(events);
    const halves = project(events.slice(1), evolve(initialState(), events[0]));
    expect(halves).toEqual(whole);
  });
});
