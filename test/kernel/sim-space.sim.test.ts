// Space accounting in the simulated kernel: snapshot sharing, copy-on-write, discards, running
// out of data space, growing, xfs and growfs.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { errnoOf, MiB, SimRig } from './sim-rig.ts';
import { filesAt } from '../../src/kernel/kernel-port.ts';

/** A file of this size without writing its bytes (the model counts a file's size as written). */
function sizedFile(file: string, bytes: number): void {
  fs.writeFileSync(file, '');
  fs.truncateSync(file, bytes);
}

describe('simulated kernel: space', () => {
  it('a snapshot shares its origin; a rewrite in the snapshot allocates; deleting the origin frees only what it alone held', async () => {
    const rig = new SimRig();
    const k = rig.kernel;
    const pool = await rig.pool();
    const origin = await rig.thin(pool, 1);
    await k.mkfs(origin.devPath, 'ext4');
    const m = rig.mountpoint('origin');
    await k.mount(origin.devPath, m, 'ext4');
    fs.writeFileSync(path.join(filesAt(k, m), 'blob'), crypto.randomBytes(4 * MiB));
    await k.unmount(m);
    const u0 = await rig.usedData(pool);
    await k.message(pool.name, 'create_snap 2 1');
    expect(await rig.usedData(pool)).toBe(u0);
    const snap = await rig.thin(pool, 2, { createId: false });
    expect((await k.status(snap.name))[0].params).toBe((await k.status(origin.name))[0].params);
    const s = rig.mountpoint('snap');
    await k.mount(snap.devPath, s, 'ext4');
    fs.writeFileSync(path.join(filesAt(k, s), 'blob'), crypto.randomBytes(4 * MiB)); // rewritten: copy-on-write
    await k.unmount(s);
    const u1 = await rig.usedData(pool);
    expect(u1 - u0).toBeGreaterThanOrEqual(64);
    expect(u1 - u0).toBeLessThanOrEqual(66);
    await k.remove(origin.name);
    await k.message(pool.name, 'delete 1');
    expect(await rig.usedData(pool)).toBe(u0); // the origin's copy of the blob went; the shared rest stays
  });

  it('a file deleted under a discard mount gives its blocks back; without discard they stay mapped', async () => {
    const rig = new SimRig();
    const k = rig.kernel;
    const pool = await rig.pool();
    for (const [id, discard] of [
      [1, true],
      [2, false],
    ] as const) {
      const thin = await rig.thin(pool, id);
      await k.mkfs(thin.devPath, 'ext4');
      const m = rig.mountpoint(`m${id}`);
      await k.mount(thin.devPath, m, 'ext4', { discard });
      const before = await rig.usedData(pool);
      fs.writeFileSync(path.join(filesAt(k, m), 'f'), crypto.randomBytes(2 * MiB));
      await k.sync(m);
      expect(await rig.usedData(pool)).toBeGreaterThanOrEqual(before + 32);
      fs.rmSync(path.join(filesAt(k, m), 'f'));
      await k.sync(m);
      if (discard) expect(await rig.usedData(pool)).toBe(before);
      else expect(await rig.usedData(pool)).toBeGreaterThanOrEqual(before + 32);
      await k.unmount(m);
    }
  });

  it('small files share pool blocks (4 KiB filesystem blocks inside 64 KiB pool blocks)', async () => {
    const rig = new SimRig();
    const k = rig.kernel;
    const pool = await rig.pool();
    const thin = await rig.thin(pool, 1);
    await k.mkfs(thin.devPath, 'ext4');
    const m = rig.mountpoint('m');
    await k.mount(thin.devPath, m, 'ext4');
    const before = await rig.usedData(pool);
    for (let i = 0; i < 64; i++) fs.writeFileSync(path.join(filesAt(k, m), `small${i}`), 'x'.repeat(1000));
    await k.unmount(m);
    expect((await rig.usedData(pool)) - before).toBe(4); // 64 x 4 KiB = 256 KiB = 4 pool blocks
  });

  it('running out of data space fails the write with ENOSPC and shows out_of_data_space until the pool grows', async () => {
    const rig = new SimRig();
    const k = rig.kernel;
    const pool = await rig.pool({ dataMiB: 16 });
    const thin = await rig.thin(pool, 1);
    await k.mkfs(thin.devPath, 'ext4');
    const m = rig.mountpoint('m');
    await k.mount(thin.devPath, m, 'ext4');
    sizedFile(path.join(filesAt(k, m), 'big'), 20 * MiB);
    expect(await errnoOf(k.sync(m))).toBe('ENOSPC');
    expect(await rig.poolWord(pool, 4)).toBe('out_of_data_space');
    expect(await errnoOf(k.unmount(m))).toBe('ENOSPC'); // the kernel would hang; the sim refuses and stays mounted
    expect((await k.mounts()).length).toBe(1);
    // Grow the data file and the pool table: the pool leaves out_of_data_space and the write lands.
    fs.truncateSync(pool.dataFile, 64 * MiB);
    const dataLoop = (await k.loopFind(pool.dataFile))!;
    await k.loopSetCapacity(dataLoop.path);
    await k.suspend(pool.name);
    await k.load(pool.name, [{ ...pool.table[0], length: (64 * MiB) / 512 }]);
    await k.resume(pool.name);
    expect(await rig.poolWord(pool, 2)).toMatch(/\/1024$/);
    expect(await rig.poolWord(pool, 4)).toBe('rw');
    await k.unmount(m);
    expect(await rig.usedData(pool)).toBeGreaterThan(320);
  });

  it('with error_if_no_space the status says so and writes fail the same way', async () => {
    const rig = new SimRig();
    const k = rig.kernel;
    const pool = await rig.pool({ dataMiB: 8, features: '1 error_if_no_space' });
    expect(await rig.poolWord(pool, 6)).toBe('error_if_no_space');
    const thin = await rig.thin(pool, 1);
    await k.mkfs(thin.devPath, 'ext4');
    const m = rig.mountpoint('m');
    await k.mount(thin.devPath, m, 'ext4');
    sizedFile(path.join(filesAt(k, m), 'big'), 8 * MiB);
    expect(await errnoOf(k.sync())).toBe('ENOSPC');
    fs.rmSync(path.join(filesAt(k, m), 'big'));
    await k.unmount(m);
  });

  it('a pool shrunk below its metadata size is EINVAL on resume and stays suspended with the new table', async () => {
    const rig = new SimRig();
    const k = rig.kernel;
    const pool = await rig.pool();
    await k.load(pool.name, [{ ...pool.table[0], length: (32 * MiB) / 512 }]);
    expect(await errnoOf(k.resume(pool.name))).toBe('EINVAL');
    expect(await k.info(pool.name)).toMatchObject({ suspended: true, inactiveTable: false });
  });

  it('ignore_discard: BLKDISCARD is EOPNOTSUPP and the status says ignore_discard', async () => {
    const rig = new SimRig();
    const k = rig.kernel;
    const pool = await rig.pool({ features: '1 ignore_discard' });
    expect(await rig.poolWord(pool, 5)).toBe('ignore_discard');
    const thin = await rig.thin(pool, 1);
    expect(await errnoOf(k.discard(thin.devPath))).toBe('EOPNOTSUPP');
  });

  it('crossing the low water mark raises the event number once per resume', async () => {
    const rig = new SimRig();
    const k = rig.kernel;
    const dataFile = rig.sparseFile('d', 16 * MiB);
    const metaFile = rig.sparseFile('m', 4 * MiB);
    const d = await k.loopAttach(dataFile);
    const mm = await k.loopAttach(metaFile);
    const pool = {
      name: 'pool',
      info: await k.create('pool', '', [{ start: 0, length: (16 * MiB) / 512, type: 'thin-pool', params: `7:${mm.minor} 7:${d.minor} 128 200` }]),
      dataFile,
      metaFile,
      table: [],
    };
    const thin = await rig.thin(pool, 1);
    expect((await k.info('pool'))!.eventNr).toBe(0);
    await k.mkfs(thin.devPath, 'ext4'); // 81 of 256 blocks: 175 free, under the mark of 200
    expect((await k.info('pool'))!.eventNr).toBe(1);
    await k.discard(thin.devPath);
    await k.mkfs(thin.devPath, 'ext4');
    expect((await k.info('pool'))!.eventNr).toBe(1);
  });

  it('xfs: needs 300 MiB, mounts only as xfs, and growfs lets a filesystem fill a grown device', async () => {
    const rig = new SimRig();
    const k = rig.kernel;
    const pool = await rig.pool({ dataMiB: 1024 });
    const small = await rig.thin(pool, 1);
    expect(await errnoOf(k.mkfs(small.devPath, 'xfs'))).toBe('EINVAL');
    const thin = await rig.thin(pool, 2, { sectors: (320 * MiB) / 512 });
    await k.mkfs(thin.devPath, 'xfs');
    const m = rig.mountpoint('x');
    expect(await errnoOf(k.mount(thin.devPath, m, 'ext4'))).toBe('EINVAL');
    await k.mount(thin.devPath, m, 'xfs');
    expect(fs.readdirSync(filesAt(k, m))).toEqual([]);
    sizedFile(path.join(filesAt(k, m), 'big'), 400 * MiB);
    expect(await errnoOf(k.sync(m))).toBe('ENOSPC'); // the filesystem is full, not the pool
    expect(await rig.poolWord(pool, 4)).toBe('rw');
    await k.load(thin.name, [{ start: 0, length: (640 * MiB) / 512, type: 'thin', params: `253:${pool.info.minor} 2` }]);
    await k.suspend(thin.name);
    await k.resume(thin.name);
    await k.growfs(thin.devPath, m, 'xfs');
    await k.sync(m);
    await k.unmount(m);
    const [mapped] = (await k.status(thin.name))[0].params.split(' ').map(Number);
    expect(mapped * 512).toBeGreaterThanOrEqual(400 * MiB);
  });
});
