// A root size per container (src/snapshotter/root-size.ts) on the simulated kernel, through the
// gRPC service: the label `containerd.io/snapshot/thinlayer.size`, the manifest's
// `snapshotter.writableSize`, and the refusals (a bad size, a size below the parent's, a size on a
// view) made before anything exists. A grown root has its device and its filesystem at the size
// asked, and keeps what its parent holds.

import { describe, it, expect, onTestFinished } from 'vitest';
import { status as Code } from '@grpc/grpc-js';
import { box, poolManifest, startHere, type Client } from './harness.ts';
import { simRoot, writeInRoot } from './sim-root.ts';
import { poolThinIds } from '../e2e/pool-thin-ids.ts';
import { simPool, type ManifestDraft } from '../builders/manifest.ts';
import { SIZE_LABEL } from '../../src/snapshotter/root-size.ts';
import { doctorProblems } from '../doctor-problems.ts';
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

const MiB = 1024 * 1024;
const sized = (size: string) => ({ [SIZE_LABEL]: size });

async function refusal(p: Promise<unknown>): Promise<{ code: number; details: string }> {
  try {
    await p;
  } catch (e) {
    const err = e as { code: number; details: string };
    return { code: err.code, details: err.details };
  }
  throw new Error('the call was not refused');
}

async function serve(draft: ManifestDraft): Promise<{ c: Client; stateDir: string }> {
  const b = box(draft);
  onTestFinished(() => b.cleanup());
  const run = await startHere(b);
  onTestFinished(() => run.stop());
  return { c: run.client, stateDir: b.stateDir };
}

/** A committed layer `layer` (256M, the base's size) holding `marker`. */
async function layerWithMarker(c: Client, stateDir: string): Promise<void> {
  const [m] = (await c.Prepare({ key: 'extract', parent: '' })).mounts;
  await writeInRoot(stateDir, m.source, 'ext4', 'marker', 'from the layer');
  await c.Commit({ name: 'layer', key: 'extract' });
}

describe('a root size per container', () => {
  it('grows an active snapshot to the size its label asks, keeping its parent’s files', async () => {
    const { c, stateDir } = await serve(poolManifest());
    await layerWithMarker(c, stateDir);
    await c.Prepare({ key: 'big', parent: 'layer', labels: sized('640M') });
    const big = await simRoot(stateDir, 'big', 'ext4', 'marker');
    expect(big).toMatchObject({ recordedBytes: 640 * MiB, deviceBytes: 640 * MiB, filesystemBytes: 640 * MiB, text: 'from the layer' });
    // The label is kept like any other, and a plain Prepare beside it keeps the parent's size.
    expect((await c.Stat({ key: 'big' })).info.labels).toEqual(sized('640M'));
    // Changed later by Update, the label is only a label: the root keeps the size it was made with.
    await c.Update({ info: { name: 'big', labels: sized('1G') }, update_mask: { paths: [`labels.${SIZE_LABEL}`] } });
    expect((await c.Stat({ key: 'big' })).info.labels).toEqual(sized('1G'));
    expect(await simRoot(stateDir, 'big', 'ext4')).toMatchObject({ deviceBytes: 640 * MiB, filesystemBytes: 640 * MiB });
    await c.Prepare({ key: 'plain', parent: 'layer' });
    expect(await simRoot(stateDir, 'plain', 'ext4')).toMatchObject({ deviceBytes: 256 * MiB, filesystemBytes: 256 * MiB });

    // A byte count is a size too; a committed grown root is the parent of roots at least its size.
    await c.Prepare({ key: 'bytes', parent: 'layer', labels: sized(String(300 * MiB)) });
    expect(await simRoot(stateDir, 'bytes', 'ext4')).toMatchObject({ deviceBytes: 300 * MiB, filesystemBytes: 300 * MiB });
    await c.Commit({ name: 'grown', key: 'big' });
    await c.Prepare({ key: 'child', parent: 'grown' });
    expect(await simRoot(stateDir, 'child', 'ext4', 'marker')).toMatchObject({ deviceBytes: 640 * MiB, filesystemBytes: 640 * MiB, text: 'from the layer' });
    const below = await refusal(c.Prepare({ key: 'smaller', parent: 'grown', labels: sized('512M') }));
    expect(below.code).toBe(Code.INVALID_ARGUMENT);
    expect(below.details).toContain(SIZE_LABEL);
    expect(below.details).toContain("below its parent's size, 640 MiB");
    expect(await doctorProblems(stateDir)).toEqual([]);
  });

  it('grows a snapshot of the base and leaves its root empty', async () => {
    const { c, stateDir } = await serve(poolManifest());
    await c.Prepare({ key: 'first', parent: '', labels: sized('1G') });
    expect(await simRoot(stateDir, 'first', 'ext4')).toMatchObject({ deviceBytes: 1024 * MiB, filesystemBytes: 1024 * MiB, entries: [] });
  });

  it('grows an xfs root with xfs_growfs', async () => {
    const { c, stateDir } = await serve({ pool: simPool('ctr', { filesystem: 'xfs', baseSize: '320M' }) });
    const [m] = (await c.Prepare({ key: 'extract', parent: '' })).mounts;
    await writeInRoot(stateDir, m.source, 'xfs', 'marker', 'xfs layer');
    await c.Commit({ name: 'layer', key: 'extract' });
    await c.Prepare({ key: 'big', parent: 'layer', labels: sized('640M') });
    expect(await simRoot(stateDir, 'big', 'xfs', 'marker')).toMatchObject({ deviceBytes: 640 * MiB, filesystemBytes: 640 * MiB, text: 'xfs layer' });
  });

  it('refuses a size that is not one, is below the parent’s, or is asked of a view, before anything is made', async () => {
    const { c, stateDir } = await serve(poolManifest());
    await c.Prepare({ key: 'extract', parent: '' });
    await c.Commit({ name: 'layer', key: 'extract' });
    const ids = await poolThinIds(stateDir);
    for (const [value, why] of [
      ['lots', 'not a size such as'],
      ['10GB', 'could be decimal or binary'],
      ['-1G', 'cannot be negative'],
      ['1000', 'not a whole number of 512-byte sectors'],
      ['100M', "below its parent's size, 256 MiB"],
    ]) {
      const r = await refusal(c.Prepare({ key: 'x', parent: 'layer', labels: sized(value) }));
      expect(r.code, value).toBe(Code.INVALID_ARGUMENT);
      expect(r.details).toContain(`label ${SIZE_LABEL}=${JSON.stringify(value)}`);
      expect(r.details).toContain(why);
    }
    const view = await refusal(c.View({ key: 'v', parent: 'layer', labels: sized('512M') }));
    expect(view.code).toBe(Code.INVALID_ARGUMENT);
    expect(view.details).toContain('a view is read-only');
    expect((await c.List({})).map((i) => i.name).sort()).toEqual(['layer']);
    expect(await poolThinIds(stateDir)).toEqual(ids);
  });

  it('gives active snapshots the manifest’s writableSize, and views their parent’s size', async () => {
    const { c, stateDir } = await serve({ ...poolManifest(), snapshotter: { writableSize: '512M' } });
    await c.Prepare({ key: 'extract', parent: '' });
    expect(await simRoot(stateDir, 'extract', 'ext4')).toMatchObject({ deviceBytes: 512 * MiB, filesystemBytes: 512 * MiB, entries: [] });
    await c.Commit({ name: 'layer', key: 'extract' });
    // Already at the default: kept as it is. A label asks for more, or for less than the default.
    await c.Prepare({ key: 'default', parent: 'layer' });
    expect(await simRoot(stateDir, 'default', 'ext4')).toMatchObject({ deviceBytes: 512 * MiB, filesystemBytes: 512 * MiB });
    await c.Prepare({ key: 'more', parent: 'layer', labels: sized('768M') });
    expect(await simRoot(stateDir, 'more', 'ext4')).toMatchObject({ deviceBytes: 768 * MiB, filesystemBytes: 768 * MiB });
    // A label below the default is honoured: the default is only what a root gets when it asks nothing.
    await c.Prepare({ key: 'less', parent: '', labels: sized('384M') });
    expect(await simRoot(stateDir, 'less', 'ext4')).toMatchObject({ deviceBytes: 384 * MiB, filesystemBytes: 384 * MiB });
    await c.View({ key: 'view', parent: '' });
    expect(await simRoot(stateDir, 'view', 'ext4')).toMatchObject({ deviceBytes: 256 * MiB, filesystemBytes: 256 * MiB });
    expect(await doctorProblems(stateDir)).toEqual([]);
  });

  it('deletes a root whose filesystem could not be grown, before containerd sees it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'thinlayer-rootsize-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const stateDir = join(root, 'state');
    const sim = new SimKernel({ dir: join(stateDir, 'sim') });
    onTestFinished(() => sim.close());
    // resize2fs fails (say, a filesystem it finds damaged); everything else is the simulated kernel.
    const kernel = new Proxy(sim, {
      get(target, prop, receiver) {
        if (prop === 'close') return async () => undefined;
        if (prop === 'growfs') return async () => Promise.reject(new Error('resize2fs: Bad magic number in super-block'));
        const value = Reflect.get(target, prop, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    }) as KernelPort;
    const gate = new SessionGate({ stateDir, kernel, crash: new CrashPoints(null), reporter: silentReporter, lockWaitMs: 5000, lingerMs: 50 }, initialState());
    onTestFinished(() => gate.close());
    const manifest = loadedManifest(poolManifest(), join(root, 'pool.yaml'));
    const runSteps = stepsOf(new Run('snapshotter'), 'thinlayer-ctr-pool', silentReporter);
    await gate.run((s) => ensurePoolAndBase(s, manifest.pool, manifest.file, runSteps));
    const service = new SnapshotService({
      gate,
      kernel,
      runSteps,
      pool: 'ctr',
      filesystem: 'ext4',
      stateDir: await openStateDir(stateDir),
      reporter: silentReporter,
    });
    await service.prepare('', 'extract', '', {}, 'active');
    await service.commit('', 'layer', 'extract', {});
    const before = await poolThinIds(stateDir);

    await expect(service.prepare('', 'big', 'layer', sized('640M'), 'active')).rejects.toThrow(/Bad magic number/);
    expect(service.list('', []).map((i) => i.name)).toEqual(['layer']);
    expect(await poolThinIds(stateDir)).toEqual(before);
    expect((await sim.listDevices()).map((d) => d.name).filter((n) => n.includes('-snap-'))).toEqual([]);
    expect((await sim.mounts()).filter((m) => m.mountpoint.startsWith(stateDir))).toEqual([]);
    expect(readdirSync(join(stateDir, 'mnt'))).toEqual([]);
  });
});
