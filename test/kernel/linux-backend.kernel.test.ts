// LinuxKernel against the real kernel (inside the test VM: npm run test:kernel). Every test builds
// its own pool on sparse files in a temporary directory and tears everything down afterwards.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, describe, expect, onTestFinished, test } from 'vitest';
import { KernelError } from '../../src/errors/index.ts';
import { LinuxKernel, linuxKernelAvailable } from '../../src/kernel/linux/index.ts';
import type { DmInfo, DmTarget, LoopDevice } from '../../src/kernel/kernel-port.ts';

const MiB = 1024 * 1024;
const BLOCK_SECTORS = 128; // 64 KiB pool blocks
let counter = 0;

interface Fixture {
  kernel: LinuxKernel;
  dir: string;
  prefix: string;
}

/** A kernel, a private directory and a name prefix; everything made under them is undone at the end. */
function fixture(): Fixture {
  const kernel = new LinuxKernel();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tl-linux-'));
  const prefix = `tlkt${process.pid}x${++counter}`;
  onTestFinished(async () => {
    for (const m of (await kernel.mounts()).filter((m) => m.mountpoint.startsWith(dir)).reverse()) {
      await kernel.unmount(m.mountpoint, { lazy: true });
    }
    const ours = (await kernel.listDevices()).filter((d) => d.name.startsWith(prefix));
    // Thin devices before the pools they live in.
    for (const d of [...ours.filter((d) => !d.name.endsWith('-pool')), ...ours.filter((d) => d.name.endsWith('-pool'))]) {
      await kernel.remove(d.name).catch(() => kernel.remove(d.name, { deferred: true }));
    }
    for (const loop of await kernel.loopList()) {
      if (loop.backingFile.startsWith(dir)) await kernel.loopDetach(loop.path).catch(() => undefined);
    }
    await kernel.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return { kernel, dir, prefix };
}

function sparseFile(file: string, bytes: number): string {
  fs.writeFileSync(file, '');
  fs.truncateSync(file, bytes);
  return file;
}

/**
 * Work the kernel finishes after the call returns: a deferred remove runs from a workqueue when the
 * last opener closes, and autoclear detaches a loop device when its last opener goes.
 */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never happened: ${what}`);
}

async function errorOf(p: Promise<unknown>): Promise<KernelError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof KernelError) return e;
    throw e;
  }
  throw new Error('expected a KernelError, but the call succeeded');
}

interface Pool {
  info: DmInfo;
  data: LoopDevice;
  metadata: LoopDevice;
  dataFile: string;
  dataSectors: number;
}

/** A thin pool on two sparse files, the metadata's first 4 KiB zeroed so the kernel formats it. */
async function makePool(f: Fixture, dataBytes = 256 * MiB, metadataBytes = 16 * MiB): Promise<Pool> {
  const dataFile = sparseFile(path.join(f.dir, 'data'), dataBytes);
  const metadataFile = sparseFile(path.join(f.dir, 'metadata'), metadataBytes);
  const fd = fs.openSync(metadataFile, 'r+');
  fs.writeSync(fd, Buffer.alloc(4096), 0, 4096, 0);
  fs.closeSync(fd);
  const data = await f.kernel.loopAttach(dataFile);
  const metadata = await f.kernel.loopAttach(metadataFile);
  const dataSectors = dataBytes / 512;
  const table: DmTarget[] = [
    { start: 0, length: dataSectors, type: 'thin-pool', params: `${metadata.major}:${metadata.minor} ${data.major}:${data.minor} ${BLOCK_SECTORS} 0 0` },
  ];
  const info = await f.kernel.create(`${f.prefix}-pool`, `${f.prefix}-uuid-pool`, table);
  return { info, data, metadata, dataFile, dataSectors };
}

async function makeThin(f: Fixture, pool: Pool, id: number, sectors: number, name = `${f.prefix}-thin${id}`): Promise<DmInfo> {
  return f.kernel.create(name, `${f.prefix}-uuid-thin${id}`, [
    { start: 0, length: sectors, type: 'thin', params: `${pool.info.major}:${pool.info.minor} ${id}` },
  ]);
}

beforeAll(() => {
  // This tier runs only where the real kernel is: failing here says so instead of skipping.
  expect(linuxKernelAvailable(), 'needs /dev/mapper/control and root: run it with npm run test:kernel').toBe(true);
});

describe('LinuxKernel on the real kernel', () => {
  test('a pool comes up from zeroed metadata, with the table as loaded and a fresh status', async () => {
    const f = fixture();
    const pool = await makePool(f);
    expect(pool.info).toMatchObject({
      name: `${f.prefix}-pool`,
      uuid: `${f.prefix}-uuid-pool`,
      liveTable: true,
      suspended: false,
      targetCount: 1,
      readOnly: false,
    });
    expect(pool.info.devPath).toMatch(/^\/dev\/(mapper\/|dm-)/);
    expect(fs.statSync(pool.info.devPath).isBlockDevice()).toBe(true);
    const table = await f.kernel.table(pool.info.name);
    // The kernel prints the feature count with a trailing space, and `params` is kept exactly as printed.
    expect(table).toEqual([
      {
        start: 0,
        length: pool.dataSectors,
        type: 'thin-pool',
        params: `${pool.metadata.major}:${pool.metadata.minor} ${pool.data.major}:${pool.data.minor} ${BLOCK_SECTORS} 0 0 `,
      },
    ]);
    const [status] = await f.kernel.status(pool.info.name);
    console.log(`pool status: ${status.params}`);
    // transaction id 0, metadata used/total, data used 0 of 256 MiB / 64 KiB blocks
    expect(status.params).toMatch(/^0 \d+\/\d+ 0\/4096 - rw /);
    const listed = await f.kernel.listDevices();
    expect(listed.map((d) => d.name)).toContain(pool.info.name);
  });

  test('thin ids: create_thin, EEXIST for a taken id, ENODATA for deleting a missing one, transaction ids', async () => {
    const f = fixture();
    const pool = await makePool(f);
    expect(await f.kernel.message(pool.info.name, 'create_thin 1')).toBe('');
    const dup = await errorOf(f.kernel.message(pool.info.name, 'create_thin 1'));
    expect(dup.errno).toBe(17);
    expect(dup.operation).toBe('dm.message create_thin 1');
    expect((await errorOf(f.kernel.message(pool.info.name, 'delete 7'))).errno).toBe(61);
    await f.kernel.message(pool.info.name, 'set_transaction_id 0 1');
    const wrongFence = await errorOf(f.kernel.message(pool.info.name, 'set_transaction_id 0 2'));
    console.log(`set_transaction_id with a stale old id: errno ${wrongFence.errno}`);
    expect(wrongFence.errno).toBe(22);
    expect((await f.kernel.status(pool.info.name))[0].params).toMatch(/^1 /);
    await f.kernel.message(pool.info.name, 'delete 1');
  });

  test('device names: EBUSY for a taken name, null info and ENXIO remove for a missing one, EINVAL for a long name', async () => {
    const f = fixture();
    const pool = await makePool(f);
    const taken = await errorOf(f.kernel.create(pool.info.name, `${f.prefix}-other-uuid`));
    console.log(`create of an existing name: errno ${taken.errno}`);
    expect(taken.errno).toBe(16);
    const takenUuid = await errorOf(f.kernel.create(`${f.prefix}-other`, pool.info.uuid));
    console.log(`create with an existing uuid: errno ${takenUuid.errno}`);
    expect(takenUuid.errno).toBe(16);
    expect(await f.kernel.info(`${f.prefix}-missing`)).toBeNull();
    expect((await errorOf(f.kernel.remove(`${f.prefix}-missing`))).errno).toBe(6);
    expect((await errorOf(f.kernel.create('x'.repeat(128), ''))).errno).toBe(22);
    // A failed load leaves no half-made device behind.
    const bad = await errorOf(f.kernel.create(`${f.prefix}-bad`, '', [{ start: 0, length: 8, type: 'thin', params: '1:1 1' }]));
    console.log(`thin table naming a non-pool device: errno ${bad.errno}`);
    expect(await f.kernel.info(`${f.prefix}-bad`)).toBeNull();
  });

  test('a thin device activates, reports its size, suspends, resumes and takes an inactive table', async () => {
    const f = fixture();
    const pool = await makePool(f);
    await f.kernel.message(pool.info.name, 'create_thin 1');
    const thin = await makeThin(f, pool, 1, 128 * 2048);
    expect(thin).toMatchObject({ liveTable: true, suspended: false, targetCount: 1 });
    expect(await f.kernel.blockDeviceSize(thin.devPath)).toBe(128 * MiB);
    expect(await f.kernel.status(thin.name)).toEqual([{ start: 0, length: 128 * 2048, type: 'thin', params: '0 -' }]);
    expect((await f.kernel.info(pool.info.name))?.openCount).toBe(1);
    await f.kernel.suspend(thin.name);
    expect((await f.kernel.info(thin.name))?.suspended).toBe(true);
    await f.kernel.load(thin.name, [{ start: 0, length: 192 * 2048, type: 'thin', params: `${pool.info.major}:${pool.info.minor} 1` }]);
    expect(await f.kernel.info(thin.name)).toMatchObject({ suspended: true, inactiveTable: true });
    await f.kernel.resume(thin.name);
    expect(await f.kernel.info(thin.name)).toMatchObject({ suspended: false, inactiveTable: false });
    expect(await f.kernel.blockDeviceSize(thin.devPath)).toBe(192 * MiB);
  });

  test('ext4: mkfs, mount, write, unmount, snapshot, grow', async () => {
    const f = fixture();
    const pool = await makePool(f);
    await f.kernel.message(pool.info.name, 'create_thin 1');
    const thin = await makeThin(f, pool, 1, 64 * 2048);
    await f.kernel.mkfs(thin.devPath, 'ext4', { label: 'base' });
    const mnt = path.join(f.dir, 'mnt', 'base');
    await f.kernel.mount(thin.devPath, mnt, 'ext4', { discard: true });
    const entry = (await f.kernel.mounts()).find((m) => m.mountpoint === mnt);
    expect(entry).toMatchObject({ major: thin.major, minor: thin.minor, fstype: 'ext4' });
    expect(entry?.options).toContain('discard');
    fs.writeFileSync(path.join(mnt, 'hello.txt'), 'hello from the base\n');
    await f.kernel.sync(mnt);
    expect((await errorOf(f.kernel.remove(thin.name))).errno).toBe(16); // mounted: open
    await f.kernel.unmount(mnt);
    expect((await errorOf(f.kernel.unmount(mnt))).errno).toBe(22);

    // A snapshot of an active origin: suspend the origin around create_snap.
    await f.kernel.suspend(thin.name);
    await f.kernel.message(pool.info.name, 'create_snap 2 1');
    await f.kernel.resume(thin.name);
    const snap = await makeThin(f, pool, 2, 64 * 2048);
    const snapMnt = path.join(f.dir, 'mnt', 'snap');
    await f.kernel.mount(snap.devPath, snapMnt, 'ext4');
    expect(fs.readFileSync(path.join(snapMnt, 'hello.txt'), 'utf8')).toBe('hello from the base\n');
    fs.writeFileSync(path.join(snapMnt, 'hello.txt'), 'changed in the snapshot\n');
    await f.kernel.sync(snapMnt);

    // Grow the snapshot's device, then its filesystem, while mounted.
    await f.kernel.suspend(snap.name);
    await f.kernel.load(snap.name, [{ start: 0, length: 96 * 2048, type: 'thin', params: `${pool.info.major}:${pool.info.minor} 2` }]);
    await f.kernel.resume(snap.name);
    await f.kernel.growfs(snap.devPath, snapMnt, 'ext4');
    expect(fs.statfsSync(snapMnt).blocks * fs.statfsSync(snapMnt).bsize).toBeGreaterThan(80 * MiB);
    await f.kernel.unmount(snapMnt);

    await f.kernel.mount(thin.devPath, mnt, 'ext4', { readOnly: true });
    expect(fs.readFileSync(path.join(mnt, 'hello.txt'), 'utf8')).toBe('hello from the base\n');
    expect((await f.kernel.mounts()).find((m) => m.mountpoint === mnt)?.options).toContain('ro');
    await f.kernel.unmount(mnt, { lazy: true });
    execFileSync('e2fsck', ['-fn', snap.devPath], { stdio: 'pipe' }); // throws when not clean
  });

  test('xfs: mkfs, mount, write, grow', async () => {
    const f = fixture();
    const pool = await makePool(f);
    await f.kernel.message(pool.info.name, 'create_thin 1');
    const thin = await makeThin(f, pool, 1, 320 * 2048); // xfs wants at least 300 MiB
    await f.kernel.mkfs(thin.devPath, 'xfs', { label: 'x' });
    const mnt = path.join(f.dir, 'mnt', 'x');
    await f.kernel.mount(thin.devPath, mnt, 'xfs');
    fs.writeFileSync(path.join(mnt, 'f'), 'xfs data');
    const sizeBefore = fs.statfsSync(mnt).blocks * fs.statfsSync(mnt).bsize; // excludes xfs's internal log
    await f.kernel.suspend(thin.name);
    await f.kernel.load(thin.name, [{ start: 0, length: 400 * 2048, type: 'thin', params: `${pool.info.major}:${pool.info.minor} 1` }]);
    await f.kernel.resume(thin.name);
    await f.kernel.growfs(thin.devPath, mnt, 'xfs');
    expect(fs.statfsSync(mnt).blocks * fs.statfsSync(mnt).bsize - sizeBefore).toBe(80 * MiB);
    await f.kernel.unmount(mnt);
    await f.kernel.mount(thin.devPath, mnt, 'xfs');
    expect(fs.readFileSync(path.join(mnt, 'f'), 'utf8')).toBe('xfs data');
  });

  test('a pool with a live thin device: EBUSY to remove, and a deferred remove finishes when the thin goes', async () => {
    const f = fixture();
    const pool = await makePool(f);
    await f.kernel.message(pool.info.name, 'create_thin 1');
    const thin = await makeThin(f, pool, 1, 2048);
    const busy = await errorOf(f.kernel.remove(pool.info.name));
    expect(busy).toMatchObject({ operation: 'dm.remove', device: pool.info.name, errno: 16 });
    await f.kernel.remove(pool.info.name, { deferred: true });
    expect(await f.kernel.info(pool.info.name)).not.toBeNull();
    await f.kernel.remove(thin.name);
    await eventually(async () => (await f.kernel.info(pool.info.name)) === null, 'the pool removed once its thin device went');
    // The pool held the loop devices; with it gone, autoclear detaches them once we let go too.
    await f.kernel.close();
    await eventually(async () => (await f.kernel.loopFind(pool.dataFile)) === null, 'the data loop device autocleared');
  });

  test('a read-only device: the flag shows in info and writes are refused', async () => {
    const f = fixture();
    const pool = await makePool(f);
    await f.kernel.message(pool.info.name, 'create_thin 1');
    const ro = await f.kernel.create(`${f.prefix}-ro`, '', [{ start: 0, length: 2048, type: 'thin', params: `${pool.info.major}:${pool.info.minor} 1` }], {
      readOnly: true,
    });
    expect(ro.readOnly).toBe(true);
    // The kernel lets root open it for writing; the writes themselves are refused.
    const fd = fs.openSync(ro.devPath, 'r+');
    try {
      expect(() => fs.writeSync(fd, Buffer.alloc(4096), 0, 4096, 0)).toThrow(/EPERM/);
    } finally {
      fs.closeSync(fd);
    }
  });

  test('a device list larger than the first ioctl buffer is read whole (DM_BUFFER_FULL_FLAG, retried)', async () => {
    const f = fixture();
    // 160 names of 120 bytes: over 20 KiB of dm_name_list records, more than the first 16 KiB buffer.
    const names = Array.from({ length: 160 }, (_, i) => `${f.prefix}-${String(i).padStart(3, '0')}-${'n'.repeat(120 - f.prefix.length - 5)}`);
    for (const name of names) await f.kernel.create(name, '');
    const listed = new Set((await f.kernel.listDevices()).map((d) => d.name));
    expect(names.filter((n) => !listed.has(n))).toEqual([]);
    for (const name of names) await f.kernel.remove(name);
  });

  test('loop devices: attach, find, list, grow, detach', async () => {
    const f = fixture();
    const file = sparseFile(path.join(f.dir, 'backing'), 8 * MiB);
    expect(await f.kernel.loopFind(file)).toBeNull();
    const loop = await f.kernel.loopAttach(file);
    expect(loop).toMatchObject({ backingFile: file, sizeBytes: 8 * MiB, readOnly: false, major: 7 });
    expect(await f.kernel.loopFind(file)).toEqual(loop);
    expect((await f.kernel.loopList()).map((l) => l.path)).toContain(loop.path);
    fs.truncateSync(file, 16 * MiB);
    await f.kernel.loopSetCapacity(loop.path);
    expect(await f.kernel.blockDeviceSize(loop.path)).toBe(16 * MiB);
    await f.kernel.loopDetach(loop.path);
    expect(await f.kernel.loopFind(file)).toBeNull();
    const ro = await f.kernel.loopAttach(file, { readOnly: true });
    expect(ro.readOnly).toBe(true);
    await f.kernel.loopDetach(ro.path);
    expect((await errorOf(f.kernel.loopAttach(path.join(f.dir, 'missing')))).errno).toBe(2);
  });

  test('discarding a thin device gives its blocks back to the pool and the data file', async () => {
    const f = fixture();
    const pool = await makePool(f);
    await f.kernel.message(pool.info.name, 'create_thin 1');
    const thin = await makeThin(f, pool, 1, 64 * 2048);
    const fd = fs.openSync(thin.devPath, 'r+');
    const chunk = Buffer.alloc(MiB, 0xa5);
    for (let i = 0; i < 32; i++) fs.writeSync(fd, chunk, 0, MiB, i * MiB);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    await f.kernel.sync();
    const usedBefore = Number((await f.kernel.status(pool.info.name))[0].params.split(' ')[2].split('/')[0]);
    const blocksBefore = fs.statSync(pool.dataFile).blocks;
    expect(usedBefore).toBe(512); // 32 MiB in 64 KiB blocks
    expect(blocksBefore * 512).toBeGreaterThanOrEqual(32 * MiB);
    await f.kernel.discard(thin.devPath, 0, 16 * MiB);
    await f.kernel.discard(thin.devPath);
    await f.kernel.sync();
    const usedAfter = Number((await f.kernel.status(pool.info.name))[0].params.split(' ')[2].split('/')[0]);
    const blocksAfter = fs.statSync(pool.dataFile).blocks;
    console.log(`discard: pool blocks ${usedBefore} -> ${usedAfter}, data file 512-byte blocks ${blocksBefore} -> ${blocksAfter}`);
    expect(usedAfter).toBe(0);
    expect(blocksAfter * 512).toBeLessThan(MiB);
  });

  test('metadata snapshots for thin_check while the pool is live', async () => {
    const f = fixture();
    const pool = await makePool(f);
    await f.kernel.message(pool.info.name, 'create_thin 1');
    await f.kernel.message(pool.info.name, 'reserve_metadata_snap');
    const held = (await f.kernel.status(pool.info.name))[0].params.split(' ')[3];
    expect(held).toMatch(/^\d+$/);
    expect((await errorOf(f.kernel.message(pool.info.name, 'reserve_metadata_snap'))).errno).toBe(16);
    execFileSync('thin_check', ['--metadata-snap', pool.metadata.path], { stdio: 'pipe' });
    await f.kernel.message(pool.info.name, 'release_metadata_snap');
    expect((await f.kernel.status(pool.info.name))[0].params.split(' ')[3]).toBe('-');
  });
});
