// While a metadata message to the pool is under way (held here until the test lets it go), reads
// (Stat, List, Mounts) and another request's activation go on, and no other metadata message starts.

import { describe, it, expect, onTestFinished } from 'vitest';
import { mkdtempSync, rmSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { openStateDir } from '../../src/events/state-dir.ts';
import type { KernelPort } from '../../src/kernel/kernel-port.ts';
import { SessionGate } from '../../src/snapshotter/session-gate.ts';
import { SnapshotService } from '../../src/snapshotter/service.ts';
import { stepsOf } from '../../src/snapshotter/snapshot-steps.ts';
import { Run } from '../../src/engine/with-run.ts';
import { ensurePoolAndBase } from '../../src/snapshotter/pool-setup.ts';
import { CrashPoints } from '../../src/engine/crash-points.ts';
import { initialState } from '../../src/lifecycle/projection.ts';
import { silentReporter } from '../../src/messages/message-port.ts';
import { loadedManifest } from '../builders/manifest.ts';
import { poolManifest } from './harness.ts';
import { filesAt } from '../../src/kernel/kernel-port.ts';

/** The simulated kernel, with chosen create_snap messages and device creations held until released. */
function holdingKernel(sim: SimKernel) {
  const heldSnaps: Array<() => void> = [];
  const heldCreates: Array<() => void> = [];
  const hold = { snapsOfBase: false, creates: false };
  const log: string[] = [];
  const kernel = new Proxy(sim, {
    get(target, prop, receiver) {
      if (prop === 'close') return async () => undefined;
      if (prop === 'message')
        return async (name: string, message: string) => {
          // create_snap NEW ORIGIN: the base has thin id 0.
          if (hold.snapsOfBase && / 0$/.test(message) && message.startsWith('create_snap')) await new Promise<void>((r) => heldSnaps.push(r));
          log.push(message.split(' ')[0]);
          return target.message(name, message);
        };
      if (prop === 'create')
        return async (...args: Parameters<KernelPort['create']>) => {
          if (hold.creates && args[0].includes('-snap-')) await new Promise<void>((r) => heldCreates.push(r));
          log.push('create');
          return target.create(...args);
        };
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as KernelPort;
  return { kernel, log, hold, heldSnaps, heldCreates };
}

async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setTimeout(r, 5));
}

describe('snapshotter concurrency', () => {
  it('serves reads and activations while a metadata message is under way, and sends metadata messages one at a time', async () => {
    const root = mkdtempSync(join(tmpdir(), 'thinlayer-snapc-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const stateDir = join(root, 'state');
    const sim = new SimKernel({ dir: join(stateDir, 'sim') });
    onTestFinished(() => sim.close());
    const k = holdingKernel(sim);
    const gate = new SessionGate(
      { stateDir, kernel: k.kernel, crash: new CrashPoints(null), reporter: silentReporter, lockWaitMs: 5000, lingerMs: 50 },
      initialState(),
    );
    onTestFinished(() => gate.close());
    const manifest = loadedManifest(poolManifest(), join(root, 'pool.yaml'));
    const runSteps = stepsOf(new Run('snapshotter'), 'thinlayer-ctr-pool', silentReporter);
    await gate.run((s) => ensurePoolAndBase(s, manifest.pool, manifest.file, runSteps));
    const service = new SnapshotService({
      gate,
      kernel: k.kernel,
      runSteps,
      pool: 'ctr',
      filesystem: 'ext4',
      stateDir: await openStateDir(stateDir),
      reporter: silentReporter,
    });
    const [first] = await service.prepare('', 'first', '', {}, 'active');
    // A snapshot of the base has an empty root: no lost+found from the base's mkfs.
    const look = join(root, 'look');
    await k.kernel.mount(first.source.startsWith(stateDir) ? (await k.kernel.info('thinlayer-ctr-snap-1'))!.devPath : first.source, look, 'ext4');
    expect(readdirSync(filesAt(k.kernel, look))).toEqual([]);
    await k.kernel.unmount(look);
    await service.commit('', 'layer', 'first', {});
    await service.prepare('', 'running', 'layer', {}, 'active');

    k.hold.snapsOfBase = true;
    k.hold.creates = true;
    let aDone = false;
    const a = service.prepare('', 'a', 'layer', {}, 'active').then((m) => {
      aDone = true;
      return m;
    });
    await until(() => k.heldCreates.length === 1); // a's create_snap is done; its activation waits
    const b = service.prepare('', 'b', '', {}, 'active');
    const c = service.prepare('', 'c', '', {}, 'active');
    await until(() => k.heldSnaps.length === 1); // one create_snap of the base under way
    // a's activation goes on while that metadata message is under way.
    k.heldCreates.shift()!();
    const ma = await a;
    expect(aDone).toBe(true);
    expect(k.heldSnaps).toHaveLength(1);
    // Reads are answered meanwhile.
    expect(service.stat('', 'a').kind).toBe('active');
    expect(
      service
        .list('', [])
        .map((i) => i.name)
        .sort(),
    ).toEqual(['a', 'layer', 'running']);
    expect((await service.mounts('', 'running'))[0].type).toBe('ext4');
    // The other create_snap has not started: never two metadata messages at once.
    expect(k.heldSnaps).toHaveLength(1);
    k.hold.creates = false;
    k.heldSnaps.shift()!();
    await until(() => k.heldSnaps.length === 1);
    k.heldSnaps.shift()!();
    const [mb, mc] = await Promise.all([b, c]);
    expect(new Set([ma[0].source, mb[0].source, mc[0].source]).size).toBe(3);
    // Each create_snap is followed by its set_transaction_id before the next one starts.
    const metadata = k.log.filter((l) => /^(create_snap|set_transaction_id)$/.test(l));
    expect(metadata.slice(-6)).toEqual(['create_snap', 'set_transaction_id', 'create_snap', 'set_transaction_id', 'create_snap', 'set_transaction_id']);
  });
});
