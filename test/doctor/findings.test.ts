import { describe, it, expect } from 'vitest';
import { compareLogWithKernel, orphansOf, missingOf, unknownDevicesOf } from '../../src/doctor/findings.ts';
import { diagnose } from '../../src/doctor/diagnose.ts';
import { baseState, facts, thing, layer, layerKey, poolStatus, OS, POOL_DEV, type FactsOptions } from './fixtures.ts';
import type { EngineState, ThingRecord } from '../../src/model/engine-state.ts';
import { intentEvent } from '../../src/events/step-events.ts';
import type { StepIntentEvent } from '../../src/model/events.ts';
import type { StepOp, StepArgs } from '../../src/model/step-contract.ts';

const WEB = baseState().things['device:web'].dmName;
/** A layer over os whose creation may be under way. */
const NEW = layerKey('os', 'new');
const summary = (opts: FactsOptions) => compareLogWithKernel(facts(opts)).map((f) => `${f.severity}:${f.code}:${f.subject}`);

function withThing(state: EngineState, t: ReturnType<typeof thing>): EngineState {
  return { ...state, things: { ...state.things, [t.key]: t } };
}
function pending<O extends StepOp>(op: O, target: string, args: StepArgs<O>, txid?: number, seq = 41): Record<string, StepIntentEvent & { seq: number }> {
  return { [`r:${seq}`]: { ...intentEvent(op, `r:${seq}`, target, args, txid), seq } };
}

/** The snapshot intent that made `t`, as the step writer writes it. */
function snapOf(state: EngineState, t: ThingRecord): StepArgs<'snap.create'> {
  const origin = state.things[t.origin!];
  return {
    kind: t.kind,
    name: t.name,
    dmName: t.dmName,
    uuid: t.uuid,
    thinId: t.thinId,
    sizeBytes: t.sizeBytes,
    origin: origin.key,
    originThinId: origin.thinId,
    originDmName: origin.dmName,
    ready: false,
  };
}

/** A state with the new layer's snapshot interrupted: its intent logged at transaction id 5, no outcome. */
function interruptedSnap(): EngineState {
  const state = withThing(baseState(), layer(['os', 'new'], 3, 'creating'));
  return { ...state, pending: pending('snap.create', NEW, snapOf(state, state.things[NEW]), 5) };
}

describe('the log against the kernel', () => {
  it('finds nothing when they agree', () => {
    expect(summary({})).toEqual([]);
  });

  it.each<[string, FactsOptions, string[]]>([
    ['a thin id in the pool the log does not own', { thinIds: [0, 1, 2, 99] }, ['warning:thin.orphan:thin:99']],
    ['a thin id the log owns that the pool lacks', { thinIds: [0, 2] }, [`error:thin.missing:${OS}`]],
    ['a device the log says is active that has no dm device', { live: {} }, ['warning:device.not-active:device:web']],
    [
      'a device the log says is mounted that is not',
      { state: withThing(baseState(), thing('device:web', 2, OS, 'mounted', { mountpoint: '/mnt/web' })) },
      ['warning:device.not-mounted:device:web'],
    ],
    [
      'a device mounted elsewhere than the log says',
      { state: withThing(baseState(), thing('device:web', 2, OS, 'mounted', { mountpoint: '/mnt/web' })), mounts: { '/mnt/other': WEB } },
      ['warning:device.mounted-elsewhere:device:web'],
    ],
    ['a device mounted that the log says is only activated', { mounts: { '/mnt/web': WEB } }, ['warning:device.unexpectedly-mounted:device:web']],
    [
      'a layer active that the log says is only created',
      { live: { [WEB]: 2, [baseState().things[OS].dmName]: 1 } },
      [`warning:device.unexpectedly-active:${OS}`],
    ],
    ['a thin table naming another thin id', { live: { [WEB]: 1 } }, ['error:thin.table-mismatch:device:web']],
    ['a thin table naming another pool', { live: { [WEB]: '253:9/2' } }, ['error:thin.table-mismatch:device:web']],
    [
      'an owned dm device on the pool the log never created',
      {
        extraOwned: [
          {
            name: 'thinlayer-demo-dev-ghost',
            uuid: 'thinlayer-demo-dev-ghost',
            owned: true,
            liveTable: true,
            openCount: 0,
            thin: { pool: POOL_DEV, thinId: 1 },
          },
        ],
      },
      ['warning:dm.unknown:dm:thinlayer-demo-dev-ghost'],
    ],
    [
      'a device of someone else mapping a thinlayer thin id',
      { foreign: [{ name: 'theirs', uuid: 'LVM-x', owned: false, liveTable: true, openCount: 1, thin: { pool: POOL_DEV, thinId: 2 } }] },
      ['error:dm.foreign-user:dm:theirs'],
    ],
    ['a transaction id ahead of the log: the log is behind its pool', { status: poolStatus({ transactionId: 9 }) }, ['error:pool.log-behind:pool']],
    ['a transaction id behind the log', { status: poolStatus({ transactionId: 3 }) }, ['info:pool.transaction-mismatch:pool']],
  ])('%s', (_name, opts, expected) => {
    expect(summary(opts)).toEqual(expected);
  });

  it("an owned device on another pool is not this pool's business", () => {
    const other = {
      name: 'thinlayer-other-dev-x',
      uuid: 'thinlayer-other-dev-x',
      owned: true,
      liveTable: true,
      openCount: 0,
      thin: { pool: '253:7', thinId: 1 },
    };
    expect(unknownDevicesOf(facts({ extraOwned: [other] }))).toEqual([]);
    expect(summary({ extraOwned: [other] })).toEqual([]);
  });

  it('an orphan mapped by a device says so, and how to free it', () => {
    const f = facts({
      thinIds: [0, 1, 2, 7],
      foreign: [{ name: 'theirs', uuid: '', owned: false, liveTable: true, openCount: 0, thin: { pool: POOL_DEV, thinId: 7 } }],
    });
    expect(orphansOf(f)).toEqual([{ thinId: 7, usedBy: expect.objectContaining({ name: 'theirs' }) }]);
    const [finding] = compareLogWithKernel(f);
    expect(finding.message).toContain('device theirs maps it');
    expect(finding.repair).toBe('dmsetup remove theirs && thinlayer gc --thin-id 7');
  });

  it("an orphan this log created is gc's to delete; one it did not is named, or kept as foreign", () => {
    const created = { ...baseState(), pool: { ...baseState().pool!, createdIds: [0, 1, 2, 7] } };
    expect(compareLogWithKernel(facts({ state: created, thinIds: [0, 1, 2, 7] }))[0]).toMatchObject({ code: 'thin.orphan', repair: 'thinlayer gc --yes' });
    const notOurs = compareLogWithKernel(facts({ thinIds: [0, 1, 2, 7] }))[0];
    expect(notOurs).toMatchObject({ code: 'thin.orphan', repair: 'thinlayer gc --thin-id 7' });
    expect(notOurs.message).toContain('never created');
    const kept = { ...baseState(), pool: { ...baseState().pool!, foreign: { txid: 5, thinIds: [7] } } };
    expect(compareLogWithKernel(facts({ state: kept, thinIds: [0, 1, 2, 7] }))).toEqual([
      expect.objectContaining({ code: 'thin.foreign', severity: 'info', repair: null }),
    ]);
  });

  it('a create whose outcome was not logged is not called missing: up settles it', () => {
    const state = interruptedSnap();
    const f = facts({ state });
    expect(missingOf(f)).toEqual([]);
    expect(summary({ state })).toEqual([`warning:step.interrupted:${NEW}`]);
  });

  it('a missing thin id whose device is live must be taken down before gc forgets it', () => {
    const [f] = compareLogWithKernel(facts({ thinIds: [0, 1] }));
    expect(f).toMatchObject({ code: 'thin.missing', subject: 'device:web', repair: 'thinlayer down && thinlayer gc --yes && thinlayer up' });
    const [g] = compareLogWithKernel(facts({ thinIds: [0, 2] }));
    expect(g.repair).toBe('thinlayer gc --yes && thinlayer up');
    // A layer is keyed by its chain id; people read its manifest name first.
    expect(g.message).toContain(`layer os (${OS.slice('layer:'.length)}) has thin id 1`);
  });

  it('the fence: a pending metadata step allows its transaction id and the next', () => {
    const state = interruptedSnap();
    for (const txid of [5, 6])
      expect(summary({ state, status: poolStatus({ transactionId: txid }), thinIds: [0, 1, 2, 3] }), `txid ${txid}`).toEqual([
        `warning:step.interrupted:${NEW}`,
      ]);
    expect(summary({ state, status: poolStatus({ transactionId: 7 }), thinIds: [0, 1, 2, 3] })).toContain('error:pool.log-behind:pool');
  });

  it('an interrupted gc is repaired by gc, and a run under way is only noted', () => {
    const state = { ...baseState(), pending: pending('orphan.delete', 'thin:99', { thinId: 99 }, 5) };
    expect(compareLogWithKernel(facts({ state, thinIds: [0, 1, 2, 99] })).find((f) => f.code === 'step.interrupted')?.repair).toBe('thinlayer gc --yes');
    const running = { ...facts({ state, thinIds: [0, 1, 2, 99] }), runInProgress: { pid: 4242, command: 'apply' } };
    expect(compareLogWithKernel(running).map((f) => `${f.severity}:${f.code}`)).toEqual(['info:run.in-progress', 'warning:thin.orphan']);
  });

  it('with the pool down, only what is knowable is said', () => {
    expect(summary({ status: null, live: {} })).toEqual([]);
    const lost = facts({ status: null, live: {} });
    lost.observed.metadataBlank = true;
    expect(compareLogWithKernel(lost).map((f) => f.code)).toEqual(['pool.metadata-lost']);
    const gone = facts({ status: null, live: {} });
    gone.observed.data = { ...gone.observed.data!, exists: false };
    expect(compareLogWithKernel(gone).map((f) => f.code)).toEqual(['pool.backing-missing']);
    // Missing, with its path, and the repair is to put it back: never destroy.
    const [missing] = compareLogWithKernel(gone);
    expect(missing.message).toContain(`the pool's data file ${gone.observed.data!.path} is missing`);
    expect(missing.repair).toContain(`put ${gone.observed.data!.path} back`);
    expect(missing.repair).not.toMatch(/destroy/);
  });

  it('shows a layer whose content failed as failed, with why', () => {
    const f = facts({});
    const layer = Object.values(f.state.things).find((t) => t.kind === 'layer')!;
    f.state.things[layer.key] = { ...layer, ready: false, failed: 'entry "x": its parent a is a symlink' };
    const found = compareLogWithKernel(f).find((x) => x.code === 'layer.failed');
    expect(found).toMatchObject({ severity: 'warning', subject: layer.key });
    expect(found!.message).toMatch(/failed: its content could not be applied \(entry "x": its parent a is a symlink\)/);
  });

  it('unreadable thin ids are a warning, not a list of every id missing', () => {
    const f = { ...facts({ thinIds: null }), thinIdsError: 'thin_ls: bad checksum' };
    expect(compareLogWithKernel(f).map((x) => `${x.code}:${x.message}`)).toEqual([
      "thin.ids-unreadable:the thin ids in the pool's metadata could not be read: thin_ls: bad checksum",
    ]);
  });
});

describe('the report', () => {
  it('puts pool health and the comparison together, errors first, and exits 1 only on errors', () => {
    const report = diagnose(facts({ thinIds: [0, 2, 99], status: poolStatus({ dataUsed: 850 }) }), '/state');
    expect(report.orphans).toEqual([99]);
    expect(report.missing).toEqual([{ key: OS, thinId: 1 }]);
    expect(report.findings.map((f) => f.code)).toEqual(['thin.missing', 'pool.data-space', 'thin.orphan']);
    expect(report.exitCode).toBe(1);
    expect(report.pool).toMatchObject({ active: true, mode: 'rw', data: { percent: 85 } });
    expect(diagnose(facts({ thinIds: [0, 1, 2, 99] }), '/state').exitCode).toBe(0);
  });

  it('an empty state dir is healthy and says how to begin', () => {
    const report = diagnose(facts({ state: { ...baseState(), desired: null, poolSpec: null, pool: null, things: {} }, status: null, live: {} }), '/state');
    expect(report.findings.map((f) => `${f.code}:${f.repair}`)).toEqual(['state.empty:thinlayer apply -f MANIFEST']);
    expect(report.exitCode).toBe(0);
  });
});
