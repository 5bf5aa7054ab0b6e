// pool.minFree as containerd meets it: a Prepare or View on a pool below the floor is refused with
// ResourceExhausted, naming what is short and by how much, before anything is made; space freed
// (a Remove) or added (watch's autoextend, running beside the snapshotter on the same state dir)
// lets the next one through.

import { describe, it, expect, onTestFinished } from 'vitest';
import { writeFileSync, readFileSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { NEVER } from 'rxjs';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { filesAt } from '../../src/kernel/kernel-port.ts';
import { parsePoolStatus, type PoolStatus } from '../../src/kernel/thin-pool.ts';
import { EVENT_LOG_FILE } from '../../src/events/log.ts';
import { watch } from '../../src/watch/watcher.ts';
import { CollectingReporter } from '../../src/messages/message-port.ts';
import { doctorCommand } from '../../src/cli/commands/doctor-command.ts';
import { simPool } from '../builders/manifest.ts';
import { box, startHere, type Box, type Client } from './harness.ts';
import { poolThinIds } from '../e2e/pool-thin-ids.ts';
import { Writable } from 'node:stream';

const POOL = 'thinlayer-ctr-pool';
/** A pool small enough to fill: 16 MiB of data, 64 KiB blocks, snapshots of 64 MiB. */
const SMALL = simPool('ctr', { data: { file: 'data.img', size: '16M' }, metadata: { file: 'metadata.img', size: '4M' }, baseSize: '64M', minFree: '10%' });

function setUp(): Box {
  const b = box({ pool: SMALL });
  onTestFinished(() => b.cleanup());
  return b;
}

async function poolStatus(sim: SimKernel): Promise<PoolStatus> {
  return parsePoolStatus((await sim.status(POOL)).find((l) => l.type === 'thin-pool')!.params);
}

/** Writes `bytes` into the snapshot's file system, as a container would, and lets writeback account them in the pool. */
async function fill(b: Box, sim: SimKernel, source: string, bytes: number): Promise<void> {
  const at = join(b.root, 'mnt');
  mkdirSync(at, { recursive: true });
  // The snapshotter's own node in STATE_DIR/dev is named after the device; the simulated kernel knows it by that name.
  await sim.mount(`/dev/mapper/${source.split('/').pop()}`, at, 'ext4');
  try {
    writeFileSync(join(filesAt(sim, at), 'big.bin'), Buffer.alloc(bytes, 7));
    await sim.sync(at);
  } finally {
    await sim.unmount(at);
  }
}

/** Fills the pool through snapshot `key` until less than `freeFraction` of its data is free. */
async function fillTo(b: Box, sim: SimKernel, c: Client, key: string, freeFraction: number): Promise<void> {
  const st = await poolStatus(sim);
  const blockBytes = 64 * 1024;
  const wanted = Math.ceil(st.dataTotal * (1 - freeFraction)) - st.dataUsed + 1;
  await fill(b, sim, (await c.Mounts({ key })).mounts[0].source, wanted * blockBytes);
  const after = await poolStatus(sim);
  expect((after.dataTotal - after.dataUsed) / after.dataTotal).toBeLessThan(freeFraction);
}

async function doctorExit(stateDir: string): Promise<{ exit: number; report: string }> {
  let text = '';
  const out = new Writable({
    write(chunk, _e, done) {
      text += chunk;
      done();
    },
  });
  const err = new Writable({ write: (_c, _e, done) => done() });
  const exit = await doctorCommand({ stateDir, backend: 'sim', json: true, out, err });
  return { exit, report: text };
}

describe('pool.minFree in the snapshotter', () => {
  it('refuses Prepare and View below the floor with ResourceExhausted, before anything is made, and serves again once space is freed', async () => {
    const b = setUp();
    const s = await startHere(b);
    onTestFinished(() => s.stop());
    const c = s.client;
    const sim = new SimKernel({ dir: join(b.stateDir, 'sim') });

    await c.Prepare({ key: 'keep', parent: '' });
    await fill(b, sim, (await c.Mounts({ key: 'keep' })).mounts[0].source, 1024 * 1024);
    await c.Prepare({ key: 'hog', parent: '' });
    await fillTo(b, sim, c, 'hog', 0.05);

    const logBytes = () => statSync(join(b.stateDir, EVENT_LOG_FILE)).size;
    const logBefore = logBytes();
    const thinIdsBefore = await poolThinIds(b.stateDir);

    for (const call of [() => c.Prepare({ key: 'next', parent: '' }), () => c.View({ key: 'look', parent: '' })]) {
      const e = await call().catch((x) => x);
      expect(e.code).toBe(Code.RESOURCE_EXHAUSTED);
      expect(e.details).toMatch(
        /^the pool has data \d+(\.\d)?% free \(\d+ of \d+ blocks\), below pool\.minFree 10%: refusing to create 1 new snapshot\. Remove containers/,
      );
      expect(e.details).not.toMatch(/metadata \d/);
    }
    // Nothing made, nothing logged, nothing listed.
    expect(logBytes()).toBe(logBefore);
    expect(await poolThinIds(b.stateDir)).toEqual(thinIdsBefore);
    expect((await c.List({})).map((i: { name: string }) => i.name).sort()).toEqual(['hog', 'keep']);

    // Calls on existing snapshots are served below the floor: they are how space comes back.
    expect((await c.Mounts({ key: 'keep' })).mounts).toHaveLength(1);
    expect(Number((await c.Usage({ key: 'keep' })).size)).toBeGreaterThan(0);
    await c.Commit({ name: 'keep-layer', key: 'keep' });
    expect((await c.Stat({ key: 'keep-layer' })).info.kind).toBe('COMMITTED');

    // containerd removes the container that filled it: the next Prepare is served, and the other snapshot's data is intact.
    await c.Remove({ key: 'hog' });
    await c.Prepare({ key: 'next', parent: '' });
    const view = await c.View({ key: 'look', parent: 'keep-layer' });
    const at = join(b.root, 'check');
    mkdirSync(at);
    await sim.mount(`/dev/mapper/${view.mounts[0].source.split('/').pop()}`, at, 'ext4', { readOnly: true });
    expect(readFileSync(join(filesAt(sim, at), 'big.bin')).equals(Buffer.alloc(1024 * 1024, 7))).toBe(true);
    await sim.unmount(at);
    await s.stop();
    expect((await doctorExit(b.stateDir)).exit).toBe(0);
  }, 120_000);

  it('with watch beside it on the same state dir: watch grows the file-backed pool, and the refused Prepare then succeeds', async () => {
    const b = setUp();
    const s = await startHere(b);
    onTestFinished(() => s.stop());
    const c = s.client;
    const sim = new SimKernel({ dir: join(b.stateDir, 'sim') });
    await c.Prepare({ key: 'hog', parent: '' });
    await fillTo(b, sim, c, 'hog', 0.05);
    expect((await c.Prepare({ key: 'next', parent: '' }).catch((x) => x)).code).toBe(Code.RESOURCE_EXHAUSTED);

    // watch on the snapshotter's own manifest: it takes the lock between the snapshotter's sessions.
    const reporter = new CollectingReporter();
    const controller = new AbortController();
    const watching = watch({ file: b.manifest, stateDir: b.stateDir, backend: 'sim', intervalMs: 50, reporter, signal: controller.signal, hangups: NEVER });
    onTestFinished(async () => {
      controller.abort();
      await watching.catch(() => undefined);
    });
    const end = Date.now() + 60_000;
    while (!reporter.messages.some((m) => m.code === 'pool.grown')) {
      if (Date.now() > end) throw new Error(`watch did not grow the pool: ${JSON.stringify(reporter.messages.slice(-5))}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const grown = await poolStatus(sim);
    expect(grown.dataTotal).toBeGreaterThan(256); // 16 MiB of 64 KiB blocks
    // The snapshotter reads the pool as it is now: the same Prepare goes through while watch runs.
    await c.Prepare({ key: 'next', parent: '' });
    expect((await c.List({})).map((i: { name: string }) => i.name).sort()).toEqual(['hog', 'next']);
    controller.abort();
    await watching;
    await s.stop();
    expect((await doctorExit(b.stateDir)).exit).toBe(0);
  }, 120_000);
});
