// A snapshot exists in full or not at all, whatever runs beside it: Cleanup beside Prepares and
// Removes, a second view of the state dir (another process's snapshotter, an apply) whose records
// a check must see, and requests at and beyond the bounds.

import { describe, it, expect, onTestFinished } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as Code, Metadata } from '@grpc/grpc-js';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { openStateDir } from '../../src/events/state-dir.ts';
import { EventLog } from '../../src/events/log.ts';
import type { KernelPort } from '../../src/kernel/kernel-port.ts';
import { SessionGate } from '../../src/snapshotter/session-gate.ts';
import { SnapshotService } from '../../src/snapshotter/service.ts';
import { SnapshotError } from '../../src/snapshotter/errors.ts';
import { stepsOf } from '../../src/snapshotter/snapshot-steps.ts';
import { Run } from '../../src/engine/with-run.ts';
import { ensurePoolAndBase } from '../../src/snapshotter/pool-setup.ts';
import { CrashPoints } from '../../src/engine/crash-points.ts';
import { Session } from '../../src/engine/session.ts';
import { initialState } from '../../src/lifecycle/projection.ts';
import { silentReporter } from '../../src/messages/message-port.ts';
import { loadedManifest } from '../builders/manifest.ts';
import { MAX_KEY_BYTES, MAX_LABEL_BYTES, MAX_LABELS } from '../../src/snapshotter/request-limits.ts';
import { box, startHere, poolManifest } from './harness.ts';

/** The simulated kernel, with device creations of snapshots held until released. */
function holdingKernel(sim: SimKernel) {
  const held: Array<() => void> = [];
  const hold = { creates: false };
  const kernel = new Proxy(sim, {
    get(target, prop, receiver) {
      if (prop === 'close') return async () => undefined;
      if (prop === 'create')
        return async (...args: Parameters<KernelPort['create']>) => {
          if (hold.creates && args[0].includes('-snap-')) await new Promise<void>((r) => held.push(r));
          return target.create(...args);
        };
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as KernelPort;
  return { kernel, hold, held };
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 5));
}

async function rig(root: string, kernel?: (sim: SimKernel) => KernelPort) {
  const stateDir = join(root, 'state');
  const sim = new SimKernel({ dir: join(stateDir, 'sim') });
  onTestFinished(() => sim.close());
  const k = kernel ? kernel(sim) : (sim as KernelPort);
  const runSteps = stepsOf(new Run('snapshotter'), 'thinlayer-ctr-pool', silentReporter);
  const open = async () => {
    const gate = new SessionGate(
      { stateDir, kernel: k, crash: new CrashPoints(null), reporter: silentReporter, lockWaitMs: 10_000, lingerMs: 20 },
      initialState(),
    );
    onTestFinished(() => gate.close());
    const service = new SnapshotService({
      gate,
      kernel: k,
      runSteps,
      pool: 'ctr',
      filesystem: 'ext4',
      stateDir: await openStateDir(stateDir),
      reporter: silentReporter,
    });
    return { gate, service };
  };
  const first = await open();
  const manifest = loadedManifest(poolManifest(), join(root, 'pool.yaml'));
  await first.gate.run((s) => ensurePoolAndBase(s, manifest.pool, manifest.file, runSteps));
  return { stateDir, sim, kernel: k, open, ...first };
}

function tempRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'thinlayer-snaps-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

const kindOf = async (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e) => (e instanceof SnapshotError ? e.kind : String(e)),
  );

describe('snapshotter safety', () => {
  it('Cleanup leaves a Prepare between its create_snap and its record alone', async () => {
    const root = tempRoot();
    let holding!: ReturnType<typeof holdingKernel>;
    const r = await rig(root, (sim) => {
      holding = holdingKernel(sim);
      return holding.kernel;
    });
    holding.hold.creates = true;
    const p = r.service.prepare('', 'racing', '', { a: 'b' }, 'active');
    await until(() => holding.held.length === 1); // create_snap done; activation (and the record) wait
    expect(Object.values(r.gate.state.things).filter((t) => t.kind === 'snapshot')).toHaveLength(1);
    expect(r.service.inFlight().size).toBe(1);
    // Before this fix, Cleanup took the record-less device for a half-made one and deleted it.
    expect(await r.service.cleanup()).toBe(0);
    holding.hold.creates = false;
    holding.held.shift()!();
    await p;
    expect(r.service.inFlight().size).toBe(0);
    expect(r.service.stat('', 'racing').kind).toBe('active');
    expect((await r.service.mounts('', 'racing'))[0].type).toBe('ext4');
    expect((await r.service.usage('', 'racing')).inodes).toBe(0);
    // A device really left without a record (a crash's) is still Cleanup's.
    expect(await r.service.cleanup()).toBe(0);
  });

  it('100 Prepares beside Cleanup in a loop: every Prepare that answered OK is there in full', async () => {
    const root = tempRoot();
    const r = await rig(root);
    let stop = false;
    let cleanups = 0;
    const loop = (async () => {
      while (!stop) {
        await r.service.cleanup();
        cleanups += 1;
        await new Promise((res) => setImmediate(res));
      }
    })();
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
    const results = await Promise.all(keys.map((k) => kindOf(r.service.prepare('', k, '', {}, 'active'))));
    stop = true;
    await loop;
    expect(results.every((x) => x === 'ok')).toBe(true);
    expect(cleanups).toBeGreaterThan(1);
    for (const k of keys) {
      expect((await r.service.mounts('', k))[0].source, k).toBeTruthy();
      expect((await r.service.usage('', k)).inodes, k).toBe(0);
    }
    // Every snapshot device has its record, and every record its device.
    const things = Object.values(r.gate.state.things).filter((t) => t.kind === 'snapshot');
    expect(things).toHaveLength(100);
    expect(things.every((t) => r.gate.state.snapshots[t.key])).toBe(true);
  }, 240_000);

  it("makes every check on the log as it stands: a second service with an old view sees the first one's records", async () => {
    const root = tempRoot();
    const r = await rig(root);
    await r.gate.close();
    // Another view of the same state dir (another process's snapshotter, one session after another).
    const other = await r.open();
    await r.service.prepare('', 'layer-src', '', {}, 'active');
    await r.service.commit('', 'layer', 'layer-src', {});
    await r.service.prepare('', 'child', 'layer', {}, 'active');
    await r.gate.close();
    // `other` last saw the state before any of these: its checks must read the log, not that view.
    expect(await kindOf(other.service.prepare('', 'child', '', {}, 'active'))).toBe('already-exists');
    expect(await kindOf(other.service.remove('', 'layer'))).toBe('failed-precondition');
    expect(await kindOf(other.service.commit('', 'layer', 'child', {}))).toBe('already-exists');
    await other.service.prepare('', 'second', 'layer', {}, 'active'); // its parent is found in the log
    await other.gate.close();
    await r.service.remove('', 'child');
    expect(await kindOf(r.service.prepare('', 'second', '', {}, 'active'))).toBe('already-exists');
    await r.gate.close();
    const names = Object.values(r.gate.state.snapshots)
      .map((s) => s.key)
      .sort();
    expect(names).toEqual(['layer', 'second']);
  });

  it("a session that finds another process's events in the log under its lock refuses to go on", async () => {
    const root = tempRoot();
    const r = await rig(root);
    await r.gate.close();
    const s = await Session.open({ stateDir: r.stateDir, backend: 'sim', kernel: r.kernel, reporter: silentReporter, mutate: true, command: 'test' });
    onTestFinished(() => s.close().catch(() => undefined));
    await s.refresh(); // nothing new: fine
    await s.append([{ type: 'recovery.note', kind: 'intent-resolved', detail: { by: 'test' } }]);
    await s.refresh(); // its own append: fine
    const intruder = await EventLog.open(await openStateDir(r.stateDir), { exclusive: false });
    await intruder.append([{ type: 'recovery.note', kind: 'intent-resolved', detail: { by: 'intruder' } }]);
    await intruder.close();
    await expect(s.refresh()).rejects.toMatchObject({ code: 'E_LOG_FOREIGN' });
  });
});

describe('snapshotter bounds', () => {
  const code = (p: Promise<unknown>) =>
    p.then(
      () => Code.OK,
      (e) => e.code,
    );

  it('accepts requests at the bounds and refuses beyond them with InvalidArgument; filters cannot stall the service', async () => {
    const b = box();
    onTestFinished(() => b.cleanup());
    const run = await startHere(b);
    onTestFinished(() => run.stop());
    const c = run.client;
    const label = (i: number, bytes: number) => {
      const k = `l${String(i).padStart(4, '0')}`;
      return [k, 'v'.repeat(bytes - k.length)] as const;
    };
    const fullLabels = Object.fromEntries(Array.from({ length: MAX_LABELS }, (_, i) => label(i, MAX_LABEL_BYTES)));
    const longKey = 'k'.repeat(MAX_KEY_BYTES);
    expect(await code(c.Prepare({ key: longKey, labels: fullLabels }))).toBe(Code.OK);
    // One byte more, one label more, one key byte more, a multi-byte character counted in bytes.
    expect(await code(c.Prepare({ key: 'x1', labels: Object.fromEntries([label(0, MAX_LABEL_BYTES + 1)]) }))).toBe(Code.INVALID_ARGUMENT);
    expect(await code(c.Prepare({ key: 'x2', labels: { ...fullLabels, extra: 'v' } }))).toBe(Code.INVALID_ARGUMENT);
    expect(await code(c.Prepare({ key: 'k'.repeat(MAX_KEY_BYTES + 1) }))).toBe(Code.INVALID_ARGUMENT);
    expect(await code(c.Prepare({ key: 'é'.repeat(MAX_KEY_BYTES / 2 + 1) }))).toBe(Code.INVALID_ARGUMENT);
    expect(await code(c.Prepare({ key: 'x3', labels: { big: 'v'.repeat(1 << 20) } }))).toBe(Code.INVALID_ARGUMENT);
    expect(await code(c.Stat({ key: 'x1' }))).toBe(Code.NOT_FOUND);
    // Update: the labels kept after the update are what is bounded.
    await c.Prepare({ key: 'small' });
    expect(await code(c.Update({ info: { name: 'small', labels: fullLabels }, update_mask: { paths: ['labels'] } }))).toBe(Code.OK);
    expect(await code(c.Update({ info: { name: 'small', labels: { extra: 'v' } }, update_mask: { paths: ['labels.extra'] } }))).toBe(Code.INVALID_ARGUMENT);
    expect(await code(c.Commit({ name: 'n'.repeat(MAX_KEY_BYTES + 1), key: 'small' }))).toBe(Code.INVALID_ARGUMENT);
    // Filters: a pattern that is no regular expression; one that backtracks exponentially elsewhere.
    expect(await code(c.List({ filters: ['name~=['] }))).toBe(Code.INVALID_ARGUMENT);
    await c.Prepare({ key: `${'a'.repeat(34)}!` });
    const [evil, stat] = await Promise.all([c.List({ filters: ['name~=^(a+)+$'] }), c.Stat({ key: 'small' })]);
    expect(evil).toEqual([]);
    expect(stat.info.name).toBe('small');
  }, 120_000);
});
