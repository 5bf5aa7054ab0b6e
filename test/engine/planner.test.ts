import { describe, it, expect } from 'vitest';
import { plan } from '../../src/plan/planner.ts';
import { initialState } from '../../src/lifecycle/projection.ts';
import type { EngineState } from '../../src/model/engine-state.ts';
import { project } from '../../src/lifecycle/fold.ts';
import { dmIdentity } from '../../src/domain/names.ts';
import { parsePoolStatus } from '../../src/kernel/thin-pool.ts';
import { chainLayers, chainHex } from '../../src/plan/layer-chain.ts';
import { thingKey } from '../../src/domain/names.ts';

// Layers are keyed by chain id: empty layers chain the empty-layer diff id over their parents.
const CONTENT = chainLayers(manifest());
const FEDORA = thingKey('layer', chainHex(CONTENT.top.fedora));
const APACHE = thingKey('layer', chainHex(CONTENT.top.apache));
import { manifest, emptyObservation, poolUp, dm, mountOf, stamp, stepEvents, createArgs, snapArgs } from './fixtures.ts';
import { intentEvent } from '../../src/events/step-events.ts';
import type { ThinlayerEventBody } from '../../src/model/events.ts';
import { stepAs } from '../../src/model/step-contract.ts';

const ops = (p: ReturnType<typeof plan>) => p.steps.map((s) => `${s.op} ${s.target}`);

/** The state after a full, successful apply of the fixture manifest (thin ids 0..4 in creation order). */
function appliedState(): EngineState {
  const m = manifest();
  const { pool } = m;
  const base = { key: 'base', ...createArgs('base', 'base', 0) };
  const fedora = { key: FEDORA, ...createArgs('layer', chainHex(CONTENT.top.fedora), 1) };
  const apache = { key: APACHE, ...createArgs('layer', chainHex(CONTENT.top.apache), 2) };
  const web1 = createArgs('device', 'web1', 3);
  const web2 = createArgs('device', 'web2', 4);
  const live = (n: number) => ({ major: 253, minor: n, devPath: `/dev/dm-${n}` });
  const bodies: ThinlayerEventBody[] = [
    { type: 'desired.set', manifest: m, source: 'apply' },
    ...stepEvents(
      'pool.activate',
      'pool',
      {
        pool: 'demo',
        ...dmIdentity('demo', 'pool'),
        blockSizeBytes: pool.blockSizeBytes,
        noSpaceTimeoutSeconds: pool.noSpaceTimeoutSeconds,
        data: pool.data,
        metadata: pool.metadata,
        blank: true,
      },
      { txid: 0, poolTxid: 0, dataBlocks: 327680, lowWater: 16384 },
    ),
    ...stepEvents('thin.create', 'base', createArgs('base', 'base', 0), { txid: 1 }),
    ...stepEvents('fs.mkfs', 'base', { dmName: base.dmName, filesystem: 'ext4' }, {}),
    ...stepEvents('snap.create', FEDORA, snapArgs('layer', fedora.name, 1, base), { txid: 2, ready: true }),
    ...stepEvents('snap.create', APACHE, snapArgs('layer', apache.name, 2, fedora), { txid: 3, ready: true }),
    ...stepEvents('snap.create', 'device:web1', snapArgs('device', 'web1', 3, apache), { txid: 4, ready: true }),
    ...stepEvents('thin.activate', 'device:web1', web1, live(3)),
    ...stepEvents(
      'fs.mount',
      'device:web1',
      { dmName: web1.dmName, mountpoint: '/run/thinlayer/web1', filesystem: 'ext4', readOnly: false },
      { mountpoint: '/run/thinlayer/web1' },
    ),
    ...stepEvents('snap.create', 'device:web2', snapArgs('device', 'web2', 4, apache), { txid: 5, ready: true }),
    ...stepEvents('thin.activate', 'device:web2', web2, live(4)),
  ];
  return project(stamp(bodies));
}

function liveObservation() {
  const web1 = dm(dmIdentity('demo', 'device', 'web1').dmName, dmIdentity('demo', 'device', 'web1').uuid);
  const web2 = dm(dmIdentity('demo', 'device', 'web2').dmName, dmIdentity('demo', 'device', 'web2').uuid);
  return { obs: poolUp(5, [web1, web2], [mountOf(web1, '/run/thinlayer/web1')]), web1, web2 };
}

describe('planner', () => {
  it('builds everything from nothing, in dependency order', () => {
    const p = plan({ desired: manifest(), state: initialState(), observed: emptyObservation(), mode: 'converge' });
    expect(ops(p)).toEqual([
      'pool.files pool',
      'pool.attach pool',
      'pool.attach pool',
      'pool.activate pool',
      'thin.create base',
      'thin.activate base',
      'fs.mkfs base',
      'thin.deactivate base',
      `snap.create ${FEDORA}`,
      `snap.create ${APACHE}`,
      'snap.create device:web1',
      'thin.activate device:web1',
      'fs.mount device:web1',
      'snap.create device:web2',
      'thin.activate device:web2',
    ]);
    expect(p.impact).toBe('create');
    expect(p.blockers).toEqual([]);
  });

  it('gives every thin device a distinct thin id and snapshots each from its origin', () => {
    const p = plan({ desired: manifest(), state: initialState(), observed: emptyObservation(), mode: 'converge' });
    const creates = p.steps.filter((s) => s.op === 'snap.create' || s.op === 'thin.create');
    const ids = creates.map((s) => s.args.thinId);
    expect(new Set(ids).size).toBe(ids.length);
    const apache = stepAs(creates.find((s) => s.target === APACHE)!, 'snap.create');
    const fedora = stepAs(creates.find((s) => s.target === FEDORA)!, 'snap.create');
    expect(apache.args.originThinId).toBe(fedora.args.thinId);
  });

  it('plans nothing when the kernel matches the desired state', () => {
    const { obs } = liveObservation();
    const p = plan({ desired: manifest(), state: appliedState(), observed: obs, mode: 'converge' });
    expect(p.steps).toEqual([]);
    expect(p.impact).toBe('none');
  });

  it('after a reboot, reloads the pool and re-activates and re-mounts without creating anything', () => {
    const obs = emptyObservation();
    obs.data!.exists = true;
    obs.metadata!.exists = true;
    obs.metadataBlank = false;
    const p = plan({ desired: manifest(), state: appliedState(), observed: obs, mode: 'converge' });
    expect(ops(p)).toEqual([
      'pool.attach pool',
      'pool.attach pool',
      'pool.activate pool',
      'thin.activate device:web1',
      'fs.mount device:web1',
      'thin.activate device:web2',
    ]);
    expect(stepAs(p.steps.find((s) => s.op === 'pool.activate')!, 'pool.activate').args.blank).toBe(false);
  });

  it('repairs drift: an unmounted device is mounted again', () => {
    const { obs, web1 } = liveObservation();
    obs.mounts = {};
    const p = plan({ desired: manifest(), state: appliedState(), observed: obs, mode: 'converge' });
    expect(ops(p)).toEqual(['fs.mount device:web1']);
    expect(stepAs(p.steps[0], 'fs.mount').args.mountpoint).toBe('/run/thinlayer/web1');
    expect(web1).toBeDefined();
  });

  it('moves a mount when the manifest changes the mountpoint', () => {
    const { obs } = liveObservation();
    const m = manifest();
    m.devices[0] = { ...m.devices[0], mountpoint: '/srv/web1' };
    const p = plan({ desired: m, state: appliedState(), observed: obs, mode: 'converge' });
    expect(ops(p)).toEqual(['fs.unmount device:web1', 'fs.mount device:web1']);
    expect(stepAs(p.steps[0], 'fs.unmount').args.mountpoint).toBe('/run/thinlayer/web1');
    expect(stepAs(p.steps[1], 'fs.mount').args.mountpoint).toBe('/srv/web1');
  });

  it('deletes a device dropped from the manifest, with destroy impact', () => {
    const { obs } = liveObservation();
    const m = manifest({ devices: [manifest().devices[1]] });
    const p = plan({ desired: m, state: appliedState(), observed: obs, mode: 'converge' });
    // A live device is deleted as it is: the delete step discards through it, then removes it.
    expect(ops(p)).toEqual(['fs.unmount device:web1', 'thin.delete device:web1']);
    expect(p.impact).toBe('destroy');
    expect(stepAs(p.steps[1], 'thin.delete').args.thinId).toBe(3);
  });

  it('down unmounts and deactivates everything and the pool, deleting nothing', () => {
    const { obs } = liveObservation();
    const p = plan({ desired: manifest(), state: appliedState(), observed: obs, mode: 'down' });
    expect(ops(p)).toEqual([
      'fs.unmount device:web1',
      'thin.deactivate device:web1',
      'thin.deactivate device:web2',
      'pool.deactivate pool',
      'pool.detach pool',
      'pool.detach pool',
    ]);
    expect(p.impact).toBe('update');
  });

  it('destroy of a pool on files lets go of the devices, then deletes the files whole, thin ids and all', () => {
    const { obs } = liveObservation();
    obs.data!.exists = true;
    const p = plan({ desired: null, state: appliedState(), observed: obs, mode: 'converge' });
    expect(ops(p)).toEqual([
      'fs.unmount device:web1',
      'thin.deactivate device:web1',
      'thin.deactivate device:web2',
      'pool.deactivate pool',
      'pool.detach pool',
      'pool.detach pool',
      'pool.delete-files pool',
    ]);
    // Once the files are gone, the log holds no thin device and no pool.
    const after = project(
      stamp(
        p.steps.flatMap(
          (step, i) =>
            [
              { type: 'step.intent', stepId: `d:${i}`, op: step.op, target: step.target, args: step.args },
              { type: 'step.done', stepId: `d:${i}`, op: step.op, target: step.target, result: {} },
            ] as ThinlayerEventBody[],
        ),
        appliedState().lastSeq + 1,
      ),
      appliedState(),
    );
    expect(after.things).toEqual({});
    expect(after.pool).toBeNull();
  });

  it('destroy of a pool that is not running does not start it just to empty it', () => {
    const obs = emptyObservation();
    obs.data!.exists = true;
    obs.metadata!.exists = true;
    obs.metadataBlank = false;
    const p = plan({ desired: null, state: appliedState(), observed: obs, mode: 'converge' });
    expect(ops(p)).toEqual(['pool.delete-files pool']);
  });

  it('destroy of a pool on block devices deletes devices, layers deepest first, the base last, then lets go of the pool', () => {
    const { obs } = liveObservation();
    const onDevices = appliedState();
    onDevices.poolSpec = { ...onDevices.poolSpec!, data: { kind: 'device', device: '/dev/vdb' }, metadata: { kind: 'device', device: '/dev/vdc' } };
    onDevices.desired = null;
    const p = plan({ desired: null, state: onDevices, observed: obs, mode: 'converge' });
    const deletes = p.steps.filter((s) => s.op === 'thin.delete').map((s) => s.target);
    expect(deletes).toEqual(['device:web1', 'device:web2', APACHE, FEDORA, 'base']);
    expect(p.steps.filter((s) => s.op === 'thin.delete').every((s) => s.args.discard === true)).toBe(true);
    expect(ops(p).indexOf('pool.deactivate pool')).toBeGreaterThan(ops(p).indexOf('thin.delete base'));
  });

  it('rolls an interrupted create forward with the same thin id', () => {
    const { obs } = liveObservation();
    const state = appliedState();
    const m = manifest({ devices: [...manifest().devices, { name: 'web3', layer: 'apache', state: 'activated', mountpoint: null, sizeBytes: null }] });
    const crashed = project(
      stamp([intentEvent('snap.create', 'x:1', 'device:web3', snapArgs('device', 'web3', 5, state.things[APACHE], { sizeBytes: 1 }), 5)], state.lastSeq + 1),
      { ...state, desired: m },
    );
    const p = plan({ desired: m, state: crashed, observed: obs, mode: 'converge' });
    expect(ops(p)).toEqual(['snap.create device:web3', 'thin.activate device:web3']);
    expect(stepAs(p.steps[0], 'snap.create').args.thinId).toBe(5);
  });

  it('deletes an interrupted create that is no longer wanted, so no thin id leaks', () => {
    const { obs } = liveObservation();
    const state = appliedState();
    const crashed = project(
      stamp([intentEvent('snap.create', 'x:1', 'device:gone', snapArgs('device', 'gone', 9, state.things[APACHE], { sizeBytes: 1 }), 5)], state.lastSeq + 1),
      state,
    );
    const p = plan({ desired: manifest(), state: crashed, observed: obs, mode: 'converge' });
    expect(ops(p)).toEqual(['thin.delete device:gone']);
    expect(stepAs(p.steps[0], 'thin.delete').args.thinId).toBe(9);
  });

  it('never reuses a thin id, even after the device holding it was deleted', () => {
    const { obs } = liveObservation();
    const state = appliedState();
    const afterDelete = project(
      stamp(
        stepEvents('thin.delete', 'device:web2', { ...createArgs('device', 'web2', 4), discard: true }, { txid: 6 }, { id: 'd:1', txid: 5 }),
        state.lastSeq + 1,
      ),
      state,
    );
    const p = plan({ desired: manifest(), state: afterDelete, observed: obs, mode: 'converge' });
    expect(stepAs(p.steps[0], 'snap.create').args.thinId).toBe(5);
  });

  it('refuses to format metadata it did not write', () => {
    const obs = emptyObservation();
    obs.data!.exists = true;
    obs.metadata!.exists = true;
    obs.metadataBlank = false;
    const p = plan({ desired: manifest(), state: initialState(), observed: obs, mode: 'converge' });
    expect(p.blockers.join()).toMatch(/refusing to format/);
  });

  it('refuses to create an empty pool over metadata the log says was formatted', () => {
    const obs = emptyObservation();
    obs.data!.exists = true;
    obs.metadata!.exists = true;
    obs.metadataBlank = true;
    const p = plan({ desired: manifest(), state: appliedState(), observed: obs, mode: 'converge' });
    expect(p.blockers.join()).toMatch(/metadata was lost/);
  });

  it('reports a missing data or metadata file as missing, with its path, and never advises destroy', () => {
    for (const roles of [['data'], ['metadata'], ['data', 'metadata']] as const) {
      const obs = emptyObservation();
      obs.data!.exists = true;
      obs.metadata!.exists = true;
      for (const role of roles) obs[role]!.exists = false;
      obs.metadataBlank = roles.includes('metadata' as never);
      const p = plan({ desired: manifest(), state: appliedState(), observed: obs, mode: 'converge' });
      expect(p.steps).toEqual([]);
      expect(p.blockers).toHaveLength(1);
      for (const role of roles) expect(p.blockers[0]).toContain(`the pool's ${role} file ${obs[role]!.path}`);
      expect(p.blockers[0]).toMatch(/missing.*put (it|them) back/);
      expect(p.blockers[0]).not.toMatch(/destroy|lost/);
    }
    // Before the pool was ever formatted, a missing file is simply made.
    const fresh = emptyObservation();
    expect(plan({ desired: manifest(), state: initialState(), observed: fresh, mode: 'converge' }).steps[0].op).toBe('pool.files');
  });

  it.each([
    ['needs_check', '5 100/16384 10/327680 - rw discard_passdown queue_if_no_space needs_check 1024', /needs a metadata check/],
    ['read-only', '5 100/16384 10/327680 - ro discard_passdown queue_if_no_space - 1024', /read-only/],
    ['failed', 'Fail', /has failed/],
  ])('blocks every mutation when the pool is %s', (_name, line, message) => {
    const { obs } = liveObservation();
    obs.pool!.status = parsePoolStatus(line);
    obs.mounts = {};
    const p = plan({ desired: manifest(), state: appliedState(), observed: obs, mode: 'converge' });
    expect(p.blockers.join()).toMatch(message);
    expect(p.steps).toEqual([]);
  });

  it('makes a new layer device when a parent changes, keeps the devices, and deletes the old layer', () => {
    const { obs } = liveObservation();
    const m = manifest({
      layers: [
        { name: 'fedora', parent: null },
        { name: 'apache', parent: null },
      ],
    });
    const moved = thingKey('layer', chainHex(chainLayers(m).top.apache));
    expect(moved).toBe(FEDORA); // an empty layer on the base: the same content as fedora, so the same device
    const withSource = manifest({
      layers: [
        { name: 'fedora', parent: null },
        { name: 'apache', parent: 'fedora', source: '/src/apache.tar' },
      ],
    });
    const content = chainLayers(withSource, { apache: [{ kind: 'tar', path: '/src/apache.tar', diffId: `sha256:${'a'.repeat(64)}`, sizeBytes: 10 }] });
    const fresh = thingKey('layer', chainHex(content.top.apache));
    const p = plan({ desired: withSource, state: appliedState(), observed: obs, mode: 'converge', content });
    expect(ops(p)).toEqual([`snap.create ${fresh}`, `layer.commit ${fresh}`, `thin.delete ${APACHE}`]);
    expect(stepAs(p.steps[0], 'snap.create').args).toMatchObject({ originThinId: 1, thinId: 5, ready: false });
  });
});

describe('planner: ownership and a log behind its pool', () => {
  it('a pool name held by another owner blocks everything, naming the owner', () => {
    const observed = {
      ...emptyObservation(),
      foreignPool: {
        dmName: 'thinlayer-demo-pool',
        uuid: `thinlayer-${'c'.repeat(32)}-demo-pool`,
        owner: `the thinlayer state directory with identity ${'c'.repeat(32)}`,
        identity: 'c'.repeat(32),
        backingFiles: ['/other/data.img'],
        why: 'its uuid differs',
      },
    };
    for (const mode of ['converge', 'down'] as const) {
      const p = plan({ desired: manifest(), state: appliedState(), observed, mode });
      expect(p.steps).toEqual([]);
      expect(p.blockers.join()).toMatch(/belongs to the thinlayer state directory with identity c{32}; its backing files are \/other\/data.img/);
    }
  });

  it('with the pool ahead of the log, nothing is deleted or formatted: a plan that would refuses, one that would not warns', () => {
    const { obs } = liveObservation();
    const ahead = { ...obs, pool: { ...obs.pool!, status: { ...obs.pool!.status, transactionId: 9 } } };
    const same = plan({ desired: manifest(), state: appliedState(), observed: ahead, mode: 'converge' });
    expect(same.blockers).toEqual([]);
    expect(same.warnings?.join()).toMatch(/transaction id is 9 but this log recorded 5/);
    const dropped = manifest({ devices: manifest().devices.filter((d) => d.name !== 'web2') });
    const p = plan({ desired: dropped, state: appliedState(), observed: ahead, mode: 'converge' });
    expect(p.steps).toEqual([]);
    expect(p.blockers.join()).toMatch(/refusing to delete device web2 .* gc --keep-foreign/);
    // At the log's own transaction id the same change is planned as usual.
    expect(ops(plan({ desired: dropped, state: appliedState(), observed: obs, mode: 'converge' }))).toContain('thin.delete device:web2');
  });

  it('rolls a create in doubt forward as `resume`; a new create is not', () => {
    const p = plan({ desired: manifest(), state: initialState(), observed: emptyObservation(), mode: 'converge' });
    expect(p.steps.find((s) => s.op === 'thin.create')!.args.resume).toBeUndefined();
    const state = appliedState();
    const web2 = state.things['device:web2'];
    state.things['device:web2'] = { ...web2, lifecycle: { state: 'creating', from: 'absent', error: null } };
    const { obs } = liveObservation();
    delete obs.devices[web2.dmName];
    const rolled = plan({ desired: manifest(), state, observed: obs, mode: 'converge' });
    expect(rolled.steps.find((s) => s.op === 'snap.create' && s.target === 'device:web2')?.args).toMatchObject({ resume: true, thinId: web2.thinId });
  });
});
