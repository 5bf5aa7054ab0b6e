// What a thin device IS (its own records: the layer it was made from, the thin id it is a snapshot
// of) decides the plan, not the manifest last recorded: given a log whose recorded manifest is
// already the desired one, a device still on its old layer is replaced, and a layer made from an
// older device of its parent is built again. Pure: projection and planner only.

import { describe, it, expect } from 'vitest';
import { plan } from '../../src/plan/planner.ts';
import { project } from '../../src/lifecycle/fold.ts';
import { dmIdentity, thingKey } from '../../src/domain/names.ts';
import { chainLayers, chainHex } from '../../src/plan/layer-chain.ts';
import { driftOf } from '../../src/plan/drift.ts';
import type { ThinlayerEventBody } from '../../src/model/events.ts';
import { manifest, poolUp, dm, mountOf, stamp, stepEvents, createArgs, snapArgs } from './fixtures.ts';

const CONTENT = chainLayers(manifest());
const FEDORA = thingKey('layer', chainHex(CONTENT.top.fedora));
const APACHE = thingKey('layer', chainHex(CONTENT.top.apache));
const ops = (p: ReturnType<typeof plan>) => p.steps.map((s) => `${s.op} ${s.target}`);

/** web1 on fedora is desired and recorded; web1 is still a snapshot of apache (a replacement a run never reached). */
function halfChanged(opts: { apacheOrigin?: number } = {}) {
  const onFedora = manifest({
    devices: [
      { name: 'web1', layer: 'fedora', state: 'mounted', mountpoint: '/run/thinlayer/web1', sizeBytes: null },
      { name: 'web2', layer: 'apache', state: 'activated', mountpoint: null, sizeBytes: null },
    ],
  });
  const { pool } = onFedora;
  const base = { key: 'base', ...createArgs('base', 'base', 0) };
  const fedora = { key: FEDORA, ...createArgs('layer', chainHex(CONTENT.top.fedora), 1) };
  const apache = { key: APACHE, ...createArgs('layer', chainHex(CONTENT.top.apache), 2) };
  const web1 = createArgs('device', 'web1', 3);
  const web2 = createArgs('device', 'web2', 4);
  const live = (n: number) => ({ major: 253, minor: n, devPath: `/dev/dm-${n}` });
  const bodies: ThinlayerEventBody[] = [
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
    ...stepEvents('snap.create', FEDORA, snapArgs('layer', fedora.name, 1, base), { txid: 2, ready: true, originThinId: 0 }),
    ...stepEvents('snap.create', APACHE, snapArgs('layer', apache.name, 2, fedora), { txid: 3, ready: true, originThinId: opts.apacheOrigin ?? 1 }),
    ...stepEvents('snap.create', 'device:web1', { ...snapArgs('device', 'web1', 3, apache), layer: 'apache' }, { txid: 4, ready: true, originThinId: 2 }),
    ...stepEvents('thin.activate', 'device:web1', web1, live(3)),
    ...stepEvents(
      'fs.mount',
      'device:web1',
      { dmName: web1.dmName, mountpoint: '/run/thinlayer/web1', filesystem: 'ext4', readOnly: false },
      { mountpoint: '/run/thinlayer/web1' },
    ),
    ...stepEvents('snap.create', 'device:web2', { ...snapArgs('device', 'web2', 4, apache), layer: 'apache' }, { txid: 5, ready: true, originThinId: 2 }),
    ...stepEvents('thin.activate', 'device:web2', web2, live(4)),
    // The new manifest recorded (as a run does before its first step), and the run killed there.
    { type: 'desired.set', manifest: onFedora, source: 'apply', digest: 'same-file' },
  ];
  const state = project(stamp(bodies));
  const w1 = dm(web1.dmName, web1.uuid);
  const w2 = dm(web2.dmName, web2.uuid);
  const observed = poolUp(5, [w1, w2], [mountOf(w1, '/run/thinlayer/web1')]);
  observed.data!.sizeBytes = pool.data.kind === 'file' ? pool.data.sizeBytes : 0;
  observed.metadata!.sizeBytes = pool.metadata.kind === 'file' ? pool.metadata.sizeBytes : 0;
  return { desired: onFedora, state, observed };
}

describe('identity: what a device is decides the plan', () => {
  it('records the layer a device was made from and the thin id its create_snap used', () => {
    const { state } = halfChanged();
    expect(state.things['device:web1']).toMatchObject({ origin: APACHE, layer: 'apache', originThinId: 2 });
    expect(state.things[APACHE]).toMatchObject({ origin: FEDORA, originThinId: 1 });
  });

  it('replaces a device still on its old layer though the recorded manifest is the desired one', () => {
    const { desired, state, observed } = halfChanged();
    expect(state.desired).toBe(desired);
    const p = plan({ desired, state, observed, mode: 'converge', content: CONTENT });
    expect(ops(p)).toEqual([
      'fs.unmount device:web1',
      'thin.delete device:web1',
      'snap.create device:web1',
      'thin.activate device:web1',
      'fs.mount device:web1',
    ]);
    expect(p.steps[1].reason).toMatch(/layer changed from apache to fedora/);
    expect(p.steps[2].args).toMatchObject({ origin: FEDORA, originThinId: 1, layer: 'fedora' });
    expect(p.impact).toBe('destroy');
    expect(driftOf({ desired, state, observed, content: CONTENT, mode: 'converge' })).toEqual([
      { subject: 'device:web1', message: 'device web1 is a snapshot of layer apache, desired a snapshot of layer fedora' },
    ]);
  });

  it('builds again a layer that is a snapshot of another thin id than its parent, and nothing for one that is not', () => {
    const stale = halfChanged({ apacheOrigin: 7 });
    const p = plan({ ...stale, mode: 'converge', content: CONTENT });
    expect(ops(p).slice(0, 2)).toEqual([`thin.delete ${APACHE}`, `snap.create ${APACHE}`]);
    expect(p.steps[1].args).toMatchObject({ origin: FEDORA, originThinId: 1 });
    expect(driftOf({ ...stale, content: CONTENT, mode: 'converge' }).filter((d) => d.subject === APACHE)).toEqual([
      { subject: APACHE, message: `layer apache (${chainHex(CONTENT.top.apache)}) is a snapshot of thin id 7, desired a snapshot of its parent's thin id 1` },
    ]);
    const fine = halfChanged();
    expect(ops(plan({ ...fine, mode: 'converge', content: CONTENT }))).not.toContain(`thin.delete ${APACHE}`);
  });
});
