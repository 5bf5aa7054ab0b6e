// The kernel contract: the behaviour thinlayer relies on, asserted against any KernelPort.
// The simulated kernel runs it on every host (sim-kernel.sim.test.ts); the Linux backend runs it
// as root inside a VM (a *.kernel.test.ts). Only the port and plain files in the fixture's
// directories are used, so both can pass it. Where they disagree, the simulator is wrong.

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { errnoName, KernelError } from '../../src/errors/index.ts';
import { filesAt, type DmInfo, type DmTarget, type KernelPort, type LoopDevice, type MountOptions } from '../../src/kernel/kernel-port.ts';

export interface KernelFixture {
  kernel: KernelPort;
  /** A private scratch directory for backing files. */
  workDir: string;
  /** A directory under which mountpoints may be made. */
  mountRoot: string;
  cleanup(): Promise<void>;
}

const MiB = 1024 * 1024;
const BLOCK_SECTORS = 128; // 64 KiB data blocks
const THIN_SECTORS = 204800; // 100 MiB virtual

/** Pool status fields, parsed from the kernel's text. */
export interface PoolStatus {
  transactionId: number;
  usedMetadata: number;
  totalMetadata: number;
  usedData: number;
  totalData: number;
  heldRoot: string;
  mode: string;
  discard: string;
  noSpace: string;
  needsCheck: string;
  metadataLowWatermark: number;
}

export function parsePoolStatus(params: string): PoolStatus {
  const f = params.trim().split(' ');
  const [usedMetadata, totalMetadata] = f[1].split('/').map(Number);
  const [usedData, totalData] = f[2].split('/').map(Number);
  return {
    transactionId: Number(f[0]),
    usedMetadata,
    totalMetadata,
    usedData,
    totalData,
    heldRoot: f[3],
    mode: f[4],
    discard: f[5],
    noSpace: f[6],
    needsCheck: f[7],
    metadataLowWatermark: Number(f[8]),
  };
}

async function expectErrno(promise: Promise<unknown>, name: string): Promise<KernelError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, `expected a KernelError ${name}`).toBeInstanceOf(KernelError);
  expect(errnoName((error as KernelError).errno)).toBe(name);
  return error as KernelError;
}

/** Some kernel work finishes in a workqueue after the call returns (deferred remove, autoclear). */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`never happened: ${what}`);
}

function devT(x: { major: number; minor: number }): string {
  return `${x.major}:${x.minor}`;
}

interface TestPool {
  name: string;
  info: DmInfo;
  dataFile: string;
  metaFile: string;
  dataLoop: LoopDevice;
  metaLoop: LoopDevice;
  table: DmTarget[];
}

/** Creates what a test needs under unique names and takes it all down afterwards. */
class Rig {
  readonly prefix = `tlc-${crypto.randomBytes(3).toString('hex')}`;
  private readonly devices: string[] = [];
  private readonly loops = new Set<string>();

  constructor(readonly fx: KernelFixture) {}

  get kernel(): KernelPort {
    return this.fx.kernel;
  }

  sparseFile(name: string, bytes: number): string {
    const file = path.join(this.fx.workDir, `${this.prefix}-${name}`);
    fs.writeFileSync(file, '');
    fs.truncateSync(file, bytes);
    return file;
  }

  /** Zero the first 4 KiB: the kernel formats such a metadata device on the first load. */
  zeroHeader(file: string): void {
    const fd = fs.openSync(file, 'r+');
    try {
      fs.writeSync(fd, Buffer.alloc(4096), 0, 4096, 0);
    } finally {
      fs.closeSync(fd);
    }
  }

  async attach(file: string): Promise<LoopDevice> {
    const loop = await this.kernel.loopAttach(file);
    this.loops.add(loop.path);
    return loop;
  }

  async create(name: string, table?: DmTarget[], uuid = `${this.prefix}-${name}`): Promise<DmInfo> {
    const info = await this.kernel.create(name, uuid, table);
    this.devices.push(name);
    return info;
  }

  poolTable(dataLoop: LoopDevice, metaLoop: LoopDevice, dataBytes: number, extra = ''): DmTarget[] {
    const params = `${devT(metaLoop)} ${devT(dataLoop)} ${BLOCK_SECTORS} 0${extra ? ` ${extra}` : ''}`;
    return [{ start: 0, length: dataBytes / 512, type: 'thin-pool', params }];
  }

  async pool(opts: { dataMiB?: number; metaMiB?: number; features?: string } = {}): Promise<TestPool> {
    const dataBytes = (opts.dataMiB ?? 64) * MiB;
    const dataFile = this.sparseFile('data', dataBytes);
    const metaFile = this.sparseFile('meta', (opts.metaMiB ?? 16) * MiB);
    this.zeroHeader(metaFile);
    const dataLoop = await this.attach(dataFile);
    const metaLoop = await this.attach(metaFile);
    const name = `${this.prefix}-pool`;
    const table = this.poolTable(dataLoop, metaLoop, dataBytes, opts.features);
    const info = await this.create(name, table);
    return { name, info, dataFile, metaFile, dataLoop, metaLoop, table };
  }

  /** Take the pool down to its files (devices removed, loops detached) and bring it back. */
  async reloadPool(pool: TestPool, between?: () => void): Promise<TestPool> {
    await this.removeAll();
    await this.detachAll();
    between?.();
    const dataLoop = await this.attach(pool.dataFile);
    const metaLoop = await this.attach(pool.metaFile);
    const table = this.poolTable(dataLoop, metaLoop, pool.table[0].length * 512);
    const info = await this.create(pool.name, table);
    return { ...pool, info, dataLoop, metaLoop, table };
  }

  async poolStatus(pool: TestPool): Promise<PoolStatus> {
    const [line] = await this.kernel.status(pool.name);
    expect(line.type).toBe('thin-pool');
    return parsePoolStatus(line.params);
  }

  /** A thin device for an id (created in the pool first unless it exists already). */
  async thin(pool: TestPool, id: number, opts: { createId?: boolean; name?: string } = {}): Promise<DmInfo> {
    if (opts.createId ?? true) await this.kernel.message(pool.name, `create_thin ${id}`);
    return this.create(opts.name ?? `${this.prefix}-thin${id}`, [{ start: 0, length: THIN_SECTORS, type: 'thin', params: `${devT(pool.info)} ${id}` }]);
  }

  mountpoint(name: string): string {
    return path.join(this.fx.mountRoot, `${this.prefix}-${name}`);
  }

  async mount(info: DmInfo, name: string, opts: MountOptions = {}): Promise<string> {
    const where = this.mountpoint(name);
    await this.kernel.mount(info.devPath, where, 'ext4', opts);
    return where;
  }

  async removeAll(): Promise<void> {
    for (const m of await this.kernel.mounts()) {
      if (m.mountpoint.startsWith(this.fx.mountRoot + path.sep)) await this.kernel.unmount(m.mountpoint).catch(() => undefined);
    }
    for (const name of [...new Set(this.devices)].reverse()) {
      if (!(await this.kernel.info(name))) continue;
      await this.kernel.resume(name).catch(() => undefined);
      await this.kernel.remove(name).catch(async () => {
        await eventually(
          async () =>
            (await this.kernel.info(name)) === null ||
            (await this.kernel.remove(name).then(
              () => true,
              () => false,
            )),
          `remove ${name}`,
        );
      });
    }
    this.devices.length = 0;
  }

  async detachAll(): Promise<void> {
    for (const loop of this.loops) await this.kernel.loopDetach(loop).catch(() => undefined);
    this.loops.clear();
  }

  async teardown(): Promise<void> {
    await this.removeAll();
    await this.detachAll();
  }
}

/** A fixture in a fresh temporary directory (work files and mountpoints inside it) around the kernel `make` gives. */
export async function tempFixture(make: (root: string) => KernelPort): Promise<KernelFixture> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'thinlayer-contract-'));
  const workDir = path.join(root, 'work');
  const mountRoot = path.join(root, 'mnt');
  fs.mkdirSync(workDir);
  fs.mkdirSync(mountRoot);
  const kernel = make(root);
  return {
    kernel,
    workDir,
    mountRoot,
    async cleanup() {
      await kernel.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
}

export function describeKernelContract(name: string, makeFixture: () => Promise<KernelFixture>): void {
  describe(`kernel contract: ${name}`, () => {
    let fx: KernelFixture;
    let rig: Rig;

    beforeEach(async () => {
      fx = await makeFixture();
      rig = new Rig(fx);
    });
    afterEach(async () => {
      try {
        await rig.teardown();
      } finally {
        await fx.cleanup();
      }
    });

    it('formats a pool on zeroed metadata; table and status have the kernel format', async () => {
      const pool = await rig.pool();
      expect(pool.info.liveTable).toBe(true);
      expect(pool.info.suspended).toBe(false);
      expect(pool.info.openCount).toBe(0);
      const [table] = await fx.kernel.table(pool.name);
      expect(table).toMatchObject({ start: 0, length: (64 * MiB) / 512, type: 'thin-pool' });
      expect(table.params.trimEnd()).toBe(`${devT(pool.metaLoop)} ${devT(pool.dataLoop)} 128 0 0`);
      const [status] = await fx.kernel.status(pool.name);
      expect(status.params.trimEnd()).toMatch(/^0 \d+\/4096 0\/1024 - rw discard_passdown queue_if_no_space - 1024$/);
      const s = parsePoolStatus(status.params);
      expect(s.usedMetadata).toBeGreaterThan(0);
      expect(s.usedMetadata).toBeLessThan(s.totalMetadata);
    });

    it('prints the requested pool features in the table and the status', async () => {
      const pool = await rig.pool({ features: '2 no_discard_passdown error_if_no_space' });
      const [table] = await fx.kernel.table(pool.name);
      expect(table.params.trimEnd()).toBe(`${devT(pool.metaLoop)} ${devT(pool.dataLoop)} 128 0 2 no_discard_passdown error_if_no_space`);
      const s = await rig.poolStatus(pool);
      expect([s.discard, s.noSpace]).toEqual(['no_discard_passdown', 'error_if_no_space']);
    });

    it('set_transaction_id is a compare-and-swap on the transaction id', async () => {
      const pool = await rig.pool();
      await fx.kernel.message(pool.name, 'set_transaction_id 0 1');
      expect((await rig.poolStatus(pool)).transactionId).toBe(1);
      await expectErrno(fx.kernel.message(pool.name, 'set_transaction_id 0 2'), 'EINVAL');
      expect((await rig.poolStatus(pool)).transactionId).toBe(1);
      await fx.kernel.message(pool.name, 'set_transaction_id 1 2');
      expect((await rig.poolStatus(pool)).transactionId).toBe(2);
    });

    it('create_thin makes an id once: a duplicate is EEXIST', async () => {
      const pool = await rig.pool();
      expect(await fx.kernel.message(pool.name, 'create_thin 7')).toBe('');
      await expectErrno(fx.kernel.message(pool.name, 'create_thin 7'), 'EEXIST');
    });

    it('delete of a missing id is ENODATA; delete of an unused id works', async () => {
      const pool = await rig.pool();
      await expectErrno(fx.kernel.message(pool.name, 'delete 3'), 'ENODATA');
      await fx.kernel.message(pool.name, 'create_thin 3');
      await fx.kernel.message(pool.name, 'delete 3');
      await expectErrno(fx.kernel.message(pool.name, 'delete 3'), 'ENODATA');
    });

    it('create_snap of a missing origin is ENODATA; of an existing id EEXIST', async () => {
      const pool = await rig.pool();
      await expectErrno(fx.kernel.message(pool.name, 'create_snap 2 1'), 'ENODATA');
      await fx.kernel.message(pool.name, 'create_thin 1');
      await fx.kernel.message(pool.name, 'create_snap 2 1');
      await expectErrno(fx.kernel.message(pool.name, 'create_snap 2 1'), 'EEXIST');
    });

    it("lists the thin ids in a pool's metadata, in use or not, and leaves no metadata snapshot held", async () => {
      const pool = await rig.pool();
      expect(await fx.kernel.listThinIds(pool.name, pool.metaLoop.path)).toEqual([]);
      await fx.kernel.message(pool.name, 'create_thin 5');
      await fx.kernel.message(pool.name, 'create_snap 9 5');
      await fx.kernel.message(pool.name, 'create_thin 2');
      await fx.kernel.message(pool.name, 'delete 9');
      expect(await fx.kernel.listThinIds(pool.name, pool.metaLoop.path)).toEqual([2, 5]);
      expect((await rig.poolStatus(pool)).heldRoot).toBe('-');
    });

    it('reads the bytes one thin id maps, as its status line counts them, and leaves no metadata snapshot held', async () => {
      const pool = await rig.pool();
      const thin = await rig.thin(pool, 4);
      expect(await fx.kernel.thinMappedBytes(pool.name, pool.metaLoop.path, 4)).toBe(0);
      await fx.kernel.mkfs(thin.devPath, 'ext4');
      const [mappedSectors] = (await fx.kernel.status(thin.name))[0].params.split(' ').map(Number);
      expect(mappedSectors).toBeGreaterThan(0);
      expect(await fx.kernel.thinMappedBytes(pool.name, pool.metaLoop.path, 4)).toBe(mappedSectors * 512);
      await expect(fx.kernel.thinMappedBytes(pool.name, pool.metaLoop.path, 7)).rejects.toThrow();
      expect((await rig.poolStatus(pool)).heldRoot).toBe('-');
    });

    it('rejects ids over 24 bits, unknown messages, and messages to a device that is not a pool, with EINVAL', async () => {
      const pool = await rig.pool();
      await expectErrno(fx.kernel.message(pool.name, 'create_thin 16777216'), 'EINVAL');
      await fx.kernel.message(pool.name, 'create_thin 16777215');
      await expectErrno(fx.kernel.message(pool.name, 'frobnicate 1'), 'EINVAL');
      await expectErrno(fx.kernel.message(pool.name, 'create_thin'), 'EINVAL');
      const thin = await rig.thin(pool, 1);
      await expectErrno(fx.kernel.message(thin.name, 'create_thin 2'), 'EINVAL');
    });

    it('activates a thin device; its table and status have the kernel format; its id is busy while live', async () => {
      const pool = await rig.pool();
      const thin = await rig.thin(pool, 1);
      expect(thin).toMatchObject({ major: pool.info.major, liveTable: true, inactiveTable: false, openCount: 0, targetCount: 1 });
      expect(thin.minor).not.toBe(pool.info.minor);
      expect(await fx.kernel.table(thin.name)).toEqual([{ start: 0, length: THIN_SECTORS, type: 'thin', params: `${devT(pool.info)} 1` }]);
      expect(await fx.kernel.status(thin.name)).toEqual([{ start: 0, length: THIN_SECTORS, type: 'thin', params: '0 -' }]);
      expect(await fx.kernel.blockDeviceSize(thin.devPath)).toBe(THIN_SECTORS * 512);
      expect((await fx.kernel.info(pool.name))!.openCount).toBe(1);
      await expectErrno(fx.kernel.message(pool.name, 'delete 1'), 'EBUSY');
    });

    it('a thin table naming an id the pool does not have is ENODATA', async () => {
      const pool = await rig.pool();
      await expectErrno(rig.thin(pool, 9, { createId: false }), 'ENODATA');
      expect(await fx.kernel.info(`${rig.prefix}-thin9`)).toBeNull();
    });

    it('a pool is busy (EBUSY) while a thin device on it is live', async () => {
      const pool = await rig.pool();
      const thin = await rig.thin(pool, 1);
      await expectErrno(fx.kernel.remove(pool.name), 'EBUSY');
      await fx.kernel.remove(thin.name);
      await fx.kernel.remove(pool.name);
      expect(await fx.kernel.info(pool.name)).toBeNull();
    });

    it('remove of a missing device is ENXIO', async () => {
      await expectErrno(fx.kernel.remove(`${rig.prefix}-nothing`), 'ENXIO');
    });

    it('create answers what info() then answers for the new device, with or without a table', async () => {
      const bare = await rig.create(`${rig.prefix}-bare`);
      expect(bare).toMatchObject({ name: `${rig.prefix}-bare`, uuid: `${rig.prefix}-${rig.prefix}-bare`, liveTable: false });
      expect(bare).toEqual(await fx.kernel.info(`${rig.prefix}-bare`));
      const pool = await rig.pool();
      expect(pool.info).toMatchObject({ liveTable: true, suspended: false, targetCount: 1 });
      expect(pool.info).toEqual(await fx.kernel.info(pool.name)); // before a thin device opens it
      const thin = await rig.thin(pool, 0);
      expect(thin).toMatchObject({ liveTable: true, suspended: false, targetCount: 1 });
      expect(thin).toEqual(await fx.kernel.info(thin.name));
    });

    it('creating a name or a uuid that exists is EBUSY', async () => {
      await rig.create(`${rig.prefix}-a`, undefined, `${rig.prefix}-uuid-a`);
      await expectErrno(fx.kernel.create(`${rig.prefix}-a`, `${rig.prefix}-uuid-b`), 'EBUSY');
      await expectErrno(fx.kernel.create(`${rig.prefix}-b`, `${rig.prefix}-uuid-a`), 'EBUSY');
      expect(await fx.kernel.info(`${rig.prefix}-b`)).toBeNull();
      const a = await fx.kernel.info(`${rig.prefix}-a`);
      expect(a).toMatchObject({ liveTable: false, targetCount: 0, uuid: `${rig.prefix}-uuid-a` });
    });

    it('a data block size that is not a multiple of 128 sectors is EINVAL, and no device is left', async () => {
      const dataLoop = await rig.attach(rig.sparseFile('data', 64 * MiB));
      const metaFile = rig.sparseFile('meta', 16 * MiB);
      const metaLoop = await rig.attach(metaFile);
      for (const blockSectors of [100, 64, 192 + 1]) {
        const table = [{ start: 0, length: (64 * MiB) / 512, type: 'thin-pool', params: `${devT(metaLoop)} ${devT(dataLoop)} ${blockSectors} 0` }];
        await expectErrno(fx.kernel.create(`${rig.prefix}-bad`, '', table), 'EINVAL');
        expect(await fx.kernel.info(`${rig.prefix}-bad`)).toBeNull();
      }
    });

    it('mkfs, mount, write, unmount and remount keeps the file; a mounted device is open', async () => {
      const pool = await rig.pool();
      const thin = await rig.thin(pool, 1);
      await fx.kernel.mkfs(thin.devPath, 'ext4');
      const first = await rig.mount(thin, 'first');
      expect((await fx.kernel.info(thin.name))!.openCount).toBe(1);
      await expectErrno(fx.kernel.remove(thin.name), 'EBUSY');
      const entry = (await fx.kernel.mounts()).find((m) => m.mountpoint === first);
      expect(entry).toMatchObject({ fstype: 'ext4', major: thin.major, minor: thin.minor });
      fs.writeFileSync(path.join(filesAt(fx.kernel, first), 'hello.txt'), 'hello thin world\n');
      await fx.kernel.unmount(first);
      expect(fs.readdirSync(filesAt(fx.kernel, first))).toEqual([]);
      expect((await fx.kernel.mounts()).some((m) => m.mountpoint === first)).toBe(false);
      const second = await rig.mount(thin, 'nested/second');
      expect(fs.readFileSync(path.join(filesAt(fx.kernel, second), 'hello.txt'), 'utf8')).toBe('hello thin world\n');
      expect(fs.readdirSync(filesAt(fx.kernel, second)).sort()).toEqual(['hello.txt', 'lost+found']);
    });

    it('mounting a device without a filesystem is EINVAL; unmounting what is not mounted is EINVAL', async () => {
      const pool = await rig.pool();
      const thin = await rig.thin(pool, 1);
      await expectErrno(fx.kernel.mount(thin.devPath, rig.mountpoint('raw'), 'ext4'), 'EINVAL');
      const plain = rig.mountpoint('plain');
      fs.mkdirSync(plain, { recursive: true });
      await expectErrno(fx.kernel.unmount(plain), 'EINVAL');
    });

    it('mounts nosuid and nodev unless suid and dev are asked for', async () => {
      const pool = await rig.pool();
      const thin = await rig.thin(pool, 1);
      await fx.kernel.mkfs(thin.devPath, 'ext4');
      const strict = await rig.mount(thin, 'strict');
      const optionsAt = async (where: string) => (await fx.kernel.mounts()).find((m) => m.mountpoint === where)!.options;
      expect(await optionsAt(strict)).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
      await fx.kernel.unmount(strict);
      const open = await rig.mount(thin, 'open', { suid: true, dev: true });
      expect(await optionsAt(open)).not.toContain('nosuid');
      expect(await optionsAt(open)).not.toContain('nodev');
    });

    it('refuses to mount over a mountpoint in use (EBUSY), leaving the first mount alone', async () => {
      const pool = await rig.pool();
      const first = await rig.thin(pool, 1);
      const second = await rig.thin(pool, 2);
      await fx.kernel.mkfs(first.devPath, 'ext4');
      await fx.kernel.mkfs(second.devPath, 'ext4');
      const where = await rig.mount(first, 'taken');
      fs.writeFileSync(path.join(filesAt(fx.kernel, where), 'mine'), 'first');
      await expectErrno(fx.kernel.mount(second.devPath, where, 'ext4'), 'EBUSY');
      const there = (await fx.kernel.mounts()).filter((m) => m.mountpoint === where);
      expect(there.map((m) => m.minor)).toEqual([first.minor]);
      expect(fs.readFileSync(path.join(filesAt(fx.kernel, where), 'mine'), 'utf8')).toBe('first');
    });

    it('never mounts through a symlink (ELOOP) nor below a directory others can write (EPERM)', async () => {
      const pool = await rig.pool();
      const thin = await rig.thin(pool, 1);
      await fx.kernel.mkfs(thin.devPath, 'ext4');
      const real = rig.mountpoint('real');
      fs.mkdirSync(path.join(real, 'inner'), { recursive: true });
      const link = rig.mountpoint('link');
      fs.symlinkSync(real, link);
      await expectErrno(fx.kernel.mount(thin.devPath, path.join(link, 'inner'), 'ext4'), 'ELOOP');
      await expectErrno(fx.kernel.mount(thin.devPath, link, 'ext4'), 'ELOOP');
      const open = rig.mountpoint('open');
      fs.mkdirSync(open);
      fs.chmodSync(open, 0o777);
      await expectErrno(fx.kernel.mount(thin.devPath, path.join(open, 'below'), 'ext4'), 'EPERM');
      expect(fs.existsSync(path.join(open, 'below'))).toBe(false);
      expect((await fx.kernel.mounts()).some((m) => m.minor === thin.minor)).toBe(false);
      expect(fs.readdirSync(path.join(real, 'inner'))).toEqual([]);
    });

    it('unmounts without following a symlink, and only the device it is told (EPERM otherwise)', async () => {
      const pool = await rig.pool();
      const thin = await rig.thin(pool, 1);
      const other = await rig.thin(pool, 2);
      await fx.kernel.mkfs(thin.devPath, 'ext4');
      const where = await rig.mount(thin, 'target');
      const link = rig.mountpoint('link-to-target');
      fs.symlinkSync(where, link);
      await expectErrno(fx.kernel.unmount(link), 'ELOOP');
      const linkedParent = rig.mountpoint('linked-parent');
      fs.symlinkSync(path.dirname(where), linkedParent);
      await expectErrno(fx.kernel.unmount(path.join(linkedParent, path.basename(where))), 'ELOOP');
      await expectErrno(fx.kernel.unmount(where, { device: { major: other.major, minor: other.minor } }), 'EPERM');
      await expectErrno(fx.kernel.unmount(where, { lazy: true, device: { major: other.major, minor: other.minor } }), 'EPERM');
      expect((await fx.kernel.mounts()).filter((m) => m.mountpoint === where).map((m) => m.minor)).toEqual([thin.minor]);
      await fx.kernel.unmount(where, { device: { major: thin.major, minor: thin.minor } });
      expect((await fx.kernel.mounts()).some((m) => m.mountpoint === where)).toBe(false);
    });

    it("a snapshot's writes are invisible in its origin, and the origin's in the snapshot", async () => {
      const pool = await rig.pool();
      const origin = await rig.thin(pool, 1);
      await fx.kernel.mkfs(origin.devPath, 'ext4');
      let a = await rig.mount(origin, 'origin');
      fs.writeFileSync(path.join(filesAt(fx.kernel, a), 'base.txt'), 'base\n');
      await fx.kernel.unmount(a);
      // The kernel wants an active origin suspended while the snapshot is taken.
      await fx.kernel.suspend(origin.name);
      await fx.kernel.message(pool.name, 'create_snap 2 1');
      await fx.kernel.resume(origin.name);
      const snap = await rig.thin(pool, 2, { createId: false });
      a = await rig.mount(origin, 'origin');
      const b = await rig.mount(snap, 'snap');
      fs.writeFileSync(path.join(filesAt(fx.kernel, a), 'origin-only.txt'), 'o\n');
      fs.writeFileSync(path.join(filesAt(fx.kernel, b), 'snap-only.txt'), 's\n');
      fs.writeFileSync(path.join(filesAt(fx.kernel, b), 'base.txt'), 'changed in the snapshot\n');
      await fx.kernel.sync();
      expect(fs.readFileSync(path.join(filesAt(fx.kernel, a), 'base.txt'), 'utf8')).toBe('base\n');
      expect(fs.readFileSync(path.join(filesAt(fx.kernel, b), 'base.txt'), 'utf8')).toBe('changed in the snapshot\n');
      expect(fs.existsSync(path.join(filesAt(fx.kernel, a), 'snap-only.txt'))).toBe(false);
      expect(fs.existsSync(path.join(filesAt(fx.kernel, b), 'origin-only.txt'))).toBe(false);
      await fx.kernel.unmount(a);
      await fx.kernel.unmount(b);
      const a2 = await rig.mount(origin, 'origin-again');
      expect(fs.readdirSync(filesAt(fx.kernel, a2)).sort()).toEqual(['base.txt', 'lost+found', 'origin-only.txt']);
    });

    it('reloading the pool from its files keeps thin ids, the transaction id and file contents', async () => {
      let pool = await rig.pool();
      let thin = await rig.thin(pool, 1);
      await fx.kernel.mkfs(thin.devPath, 'ext4');
      const m = await rig.mount(thin, 'm');
      fs.writeFileSync(path.join(filesAt(fx.kernel, m), 'kept.txt'), 'still here\n');
      await fx.kernel.unmount(m);
      await fx.kernel.message(pool.name, 'set_transaction_id 0 5');
      const mappedBefore = (await fx.kernel.status(thin.name))[0].params;
      pool = await rig.reloadPool(pool);
      const s = await rig.poolStatus(pool);
      expect(s.transactionId).toBe(5);
      expect(s.usedData).toBeGreaterThan(0);
      await expectErrno(fx.kernel.message(pool.name, 'create_thin 1'), 'EEXIST');
      thin = await rig.thin(pool, 1, { createId: false });
      expect((await fx.kernel.status(thin.name))[0].params).toBe(mappedBefore);
      const again = await rig.mount(thin, 'again');
      expect(fs.readFileSync(path.join(filesAt(fx.kernel, again), 'kept.txt'), 'utf8')).toBe('still here\n');
    });

    it('zeroing the metadata header makes a blank pool on the next load', async () => {
      let pool = await rig.pool();
      await fx.kernel.message(pool.name, 'create_thin 1');
      await fx.kernel.message(pool.name, 'set_transaction_id 0 3');
      pool = await rig.reloadPool(pool, () => rig.zeroHeader(pool.metaFile));
      const s = await rig.poolStatus(pool);
      expect([s.transactionId, s.usedData]).toEqual([0, 0]);
      await fx.kernel.message(pool.name, 'create_thin 1');
    });

    it('data use grows after writing a few MiB and falls back after the device is deleted', async () => {
      const pool = await rig.pool();
      const thin = await rig.thin(pool, 1);
      await fx.kernel.mkfs(thin.devPath, 'ext4');
      const afterMkfs = (await rig.poolStatus(pool)).usedData;
      expect(afterMkfs).toBeGreaterThan(0);
      const m = await rig.mount(thin, 'm', { discard: true });
      fs.writeFileSync(path.join(filesAt(fx.kernel, m), 'four-mib.bin'), crypto.randomBytes(4 * MiB));
      await fx.kernel.sync(m);
      await fx.kernel.unmount(m);
      const afterWrite = (await rig.poolStatus(pool)).usedData;
      expect(afterWrite - afterMkfs).toBeGreaterThanOrEqual(64); // 4 MiB of 64 KiB blocks
      const [mapped] = (await fx.kernel.status(thin.name))[0].params.split(' ').map(Number);
      expect(mapped).toBe(afterWrite * BLOCK_SECTORS); // the only device maps every used block
      await fx.kernel.remove(thin.name);
      await fx.kernel.message(pool.name, 'delete 1');
      expect((await rig.poolStatus(pool)).usedData).toBe(0);
    });

    it('a discard of a whole thin device unmaps all its blocks', async () => {
      const pool = await rig.pool();
      const thin = await rig.thin(pool, 1);
      await fx.kernel.mkfs(thin.devPath, 'ext4');
      expect((await fx.kernel.status(thin.name))[0].params).not.toBe('0 -');
      await fx.kernel.discard(thin.devPath);
      expect((await fx.kernel.status(thin.name))[0].params).toBe('0 -');
      expect((await rig.poolStatus(pool)).usedData).toBe(0);
    });

    it('reserve_metadata_snap shows a held root; a second is EBUSY; release clears it; releasing none is EINVAL', async () => {
      const pool = await rig.pool();
      await fx.kernel.message(pool.name, 'reserve_metadata_snap');
      const held = (await rig.poolStatus(pool)).heldRoot;
      expect(held).toMatch(/^\d+$/);
      await expectErrno(fx.kernel.message(pool.name, 'reserve_metadata_snap'), 'EBUSY');
      await fx.kernel.message(pool.name, 'release_metadata_snap');
      expect((await rig.poolStatus(pool)).heldRoot).toBe('-');
      await expectErrno(fx.kernel.message(pool.name, 'release_metadata_snap'), 'EINVAL');
    });

    it('a deferred remove of an open device waits for its last opener', async () => {
      const pool = await rig.pool();
      const thin = await rig.thin(pool, 1);
      await fx.kernel.mkfs(thin.devPath, 'ext4');
      const m = await rig.mount(thin, 'm');
      await fx.kernel.remove(thin.name, { deferred: true });
      expect(await fx.kernel.info(thin.name)).not.toBeNull();
      await fx.kernel.unmount(m);
      await eventually(async () => (await fx.kernel.info(thin.name)) === null, `${thin.name} removed after its unmount`);
      // The kernel drops the thin device's name before it lets go of the pool: the pool is free soon after, not at once.
      await eventually(
        () =>
          fx.kernel.remove(pool.name).then(
            () => true,
            (e) => (e?.errno === 16 ? false : Promise.reject(e)),
          ),
        `${pool.name} removable once the deferred remove let go of it`,
      );
    });

    it('a loaded table goes live on resume; suspend and resume show in info', async () => {
      const pool = await rig.pool();
      const thin = await rig.thin(pool, 1);
      await fx.kernel.load(thin.name, [{ start: 0, length: 2 * THIN_SECTORS, type: 'thin', params: `${devT(pool.info)} 1` }]);
      expect(await fx.kernel.info(thin.name)).toMatchObject({ liveTable: true, inactiveTable: true });
      expect((await fx.kernel.table(thin.name))[0].length).toBe(THIN_SECTORS);
      await fx.kernel.suspend(thin.name);
      expect((await fx.kernel.info(thin.name))!.suspended).toBe(true);
      await fx.kernel.resume(thin.name);
      expect(await fx.kernel.info(thin.name)).toMatchObject({ suspended: false, inactiveTable: false });
      expect((await fx.kernel.table(thin.name))[0].length).toBe(2 * THIN_SECTORS);
      expect(await fx.kernel.blockDeviceSize(thin.devPath)).toBe(2 * THIN_SECTORS * 512);
    });

    it('a mounted thin device grows online: a longer table loaded, suspend, resume, then growfs; its files and its mount stay', async () => {
      const pool = await rig.pool();
      const thin = await rig.thin(pool, 1);
      await fx.kernel.mkfs(thin.devPath, 'ext4');
      const where = await rig.mount(thin, 'grow');
      fs.writeFileSync(path.join(filesAt(fx.kernel, where), 'kept.txt'), 'written before the grow\n');
      await fx.kernel.load(thin.name, [{ start: 0, length: 3 * THIN_SECTORS, type: 'thin', params: `${devT(pool.info)} 1` }]);
      await fx.kernel.suspend(thin.name);
      await fx.kernel.resume(thin.name);
      expect(await fx.kernel.info(thin.name)).toMatchObject({ suspended: false, inactiveTable: false, minor: thin.minor, openCount: 1 });
      expect((await fx.kernel.table(thin.name))[0]).toMatchObject({ length: 3 * THIN_SECTORS, params: `${devT(pool.info)} 1` });
      expect(await fx.kernel.blockDeviceSize(thin.devPath)).toBe(3 * THIN_SECTORS * 512);
      await fx.kernel.growfs(thin.devPath, where, 'ext4');
      await fx.kernel.growfs(thin.devPath, where, 'ext4'); // a filesystem that fills its device already: nothing to do
      expect((await fx.kernel.mounts()).find((m) => m.mountpoint === where)).toMatchObject({ major: thin.major, minor: thin.minor });
      fs.writeFileSync(path.join(filesAt(fx.kernel, where), 'after.txt'), 'written after the grow\n');
      await fx.kernel.unmount(where);
      const again = await rig.mount(thin, 'grow-again');
      expect(fs.readFileSync(path.join(filesAt(fx.kernel, again), 'kept.txt'), 'utf8')).toBe('written before the grow\n');
      expect(fs.readFileSync(path.join(filesAt(fx.kernel, again), 'after.txt'), 'utf8')).toBe('written after the grow\n');
    });

    it('loops: attach, find by backing file, size; detach; detaching again is ENXIO', async () => {
      const file = rig.sparseFile('loop', 8 * MiB);
      const loop = await rig.attach(file);
      expect(loop.path).toMatch(/^\/dev\/loop\d+$/);
      expect(loop).toMatchObject({ minor: Number(loop.path.slice('/dev/loop'.length)), backingFile: path.resolve(file), sizeBytes: 8 * MiB });
      expect((await fx.kernel.loopFind(file))?.path).toBe(loop.path);
      expect((await fx.kernel.loopList()).map((l) => l.path)).toContain(loop.path);
      expect(await fx.kernel.blockDeviceSize(loop.path)).toBe(8 * MiB);
      fs.truncateSync(file, 16 * MiB);
      await fx.kernel.loopSetCapacity(loop.path);
      expect(await fx.kernel.blockDeviceSize(loop.path)).toBe(16 * MiB);
      await fx.kernel.loopDetach(loop.path);
      await eventually(async () => (await fx.kernel.loopFind(file)) === null, 'loop detached');
      await expectErrno(fx.kernel.loopDetach(loop.path), 'ENXIO');
    });

    it('detaching a loop a pool uses is deferred until the pool goes', async () => {
      const pool = await rig.pool();
      await fx.kernel.loopDetach(pool.metaLoop.path);
      expect((await fx.kernel.loopFind(pool.metaFile))?.path).toBe(pool.metaLoop.path);
      expect((await rig.poolStatus(pool)).mode).toBe('rw');
      await fx.kernel.remove(pool.name);
      await eventually(async () => (await fx.kernel.loopFind(pool.metaFile)) === null, 'metadata loop cleared after the pool went');
      expect((await fx.kernel.loopFind(pool.dataFile))?.path).toBe(pool.dataLoop.path);
    });
  });
}
