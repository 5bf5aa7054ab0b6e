// The simulated kernel: a KernelPort that behaves like Linux device-mapper, dm-thin, loop devices
// and mounted filesystems, without any of them. docs/simulated-kernel.md is its specification;
// test/contract holds the assertions it shares with the real kernel.
//
// The imperative shell: every public method refreshes the two stores (other processes may have
// changed them), then reads, or takes the mutation lock and journals its changes before it
// returns. The work inside is synchronous, so no two operations of one process interleave.

import { simThinIds, simMappedBytes } from './sim-thin-ids.ts';
import fs from 'node:fs';
import path from 'node:path';
import type { DmInfo, DmTarget, KernelPort, LoopDevice, MountEntry, MountOptions, UnmountOptions } from '../kernel-port.ts';
import type { Filesystem } from '../../model/manifest.ts';
import { untrustedDirectory } from '../../host/path-trust.ts';
import { devicesHeld, DM_MAJOR, LOOP_MAJOR, parseTable, tableSectors, type ParsedTarget, type PoolTarget } from './dm-table.ts';
import { SECTOR_BYTES } from '../../model/units.ts';
import { MutationLock } from './file-lock.ts';
import { newPoolId, readMetadataHeader, writeMetadataHeader } from './metadata-header.ts';
import { PersistentStore } from './persistent-store.ts';
import { fail, SimErrno, toKernelError } from './sim-errno.ts';
import {
  attachMountpoint,
  detachMountpoint,
  simMountPath,
  growLayout,
  mkfsLayout,
  planAccounting,
  poolBlocksNowFree,
  poolBlocksTouched,
  readFsState,
  scanContent,
  wipeContent,
  writeFsState,
} from './sim-fs.ts';
import { formatDevT, linearTableParams, poolStatusParams, poolTableParams, thinStatusParams, thinTableParams, type DevT } from './status-format.ts';
import { MAX_METADATA_BLOCKS, METADATA_BLOCK_BYTES, PoolMetadata, parsePoolMessage, type PoolOp } from './sim-pool-metadata.ts';
import {
  dmDevT,
  loopDevT,
  VolatileStore,
  type DmDeviceRecord,
  type LoadedTable,
  type LoopRecord,
  type MountRecord,
  type VolatileOp,
  type VolatileState,
} from './volatile-store.ts';

export interface SimKernelOptions {
  /** The simulator's own directory: persistent/ (pool metadata, device contents) and volatile/. */
  dir: string;
  /** fsync every journal append (power-cut durability). Off: mutations survive SIGKILL only. */
  fsync?: boolean;
}

/** A live thin device, with everything I/O to it needs. */
interface ThinContext {
  rec: DmDeviceRecord;
  poolRec: DmDeviceRecord;
  poolId: string;
  thinId: number;
  model: PoolMetadata;
  blockBytes: number;
}

const MAX_NAME_LENGTH = 127;
const MAX_UUID_LENGTH = 128;

export class SimKernel implements KernelPort {
  readonly kind = 'sim' as const;
  readonly dir: string;
  private readonly persistent: PersistentStore;
  private readonly volatile: VolatileStore;
  private readonly lock: MutationLock;
  private readonly fsync: boolean;
  private settledOnce = false;

  constructor(options: SimKernelOptions) {
    this.dir = path.resolve(options.dir);
    this.fsync = options.fsync ?? false;
    fs.mkdirSync(this.dir, { recursive: true });
    this.persistent = new PersistentStore(path.join(this.dir, 'persistent'), this.fsync);
    this.volatile = new VolatileStore(path.join(this.dir, 'volatile'), this.fsync);
    this.lock = new MutationLock(path.join(this.dir, 'lock'));
  }

  // --- plumbing ----------------------------------------------------------------------------------

  private get state(): VolatileState {
    return this.volatile.state;
  }

  /**
   * Devices first, metadata second: writers journal pool metadata before the device records that
   * name it, so a reader never sees a device whose pool or thin id it has not read yet.
   */
  private refresh(): void {
    this.volatile.journal.refresh();
    this.persistent.journal.refresh();
  }

  private async read<T>(operation: string, device: string, fn: () => T): Promise<T> {
    try {
      this.refresh();
      return fn();
    } catch (e) {
      throw toKernelError(e, operation, device);
    }
  }

  private async mutate<T>(operation: string, device: string, fn: () => T): Promise<T> {
    try {
      return this.lock.hold(() => {
        this.refresh();
        if (!this.settledOnce) {
          this.settleAll();
          this.settledOnce = true;
        }
        return fn();
      });
    } catch (e) {
      throw toKernelError(e, operation, device);
    }
  }

  private commitVolatile(ops: VolatileOp[]): void {
    this.volatile.journal.append(ops);
  }

  private putDevice(rec: DmDeviceRecord): void {
    const old = this.state.devices.get(rec.name);
    this.commitVolatile([{ t: 'dev', name: rec.name, v: rec }]);
    if (old) this.settle(releasedBy(old, rec));
  }

  private device(name: string): DmDeviceRecord {
    const rec = this.state.devices.get(name);
    if (!rec) fail('ENXIO', `no device-mapper device named ${name}`);
    return rec;
  }

  /**
   * Finish what waited for a device to be let go: a deferred remove once nothing holds the
   * device, an autoclear loop detach once no table uses the loop. Removing one device lets go of
   * what its tables held, so this cascades (thin, then pool, then loops).
   */
  private settle(released: string[]): void {
    const queue = [...released];
    while (queue.length > 0) {
      const devT = queue.shift()!;
      const [major, minor] = devT.split(':').map(Number);
      if (major === DM_MAJOR) {
        const name = this.state.byMinor.get(minor);
        const rec = name === undefined ? undefined : this.state.devices.get(name);
        if (rec?.deferredRemove && this.state.openCount(rec) === 0) {
          this.commitVolatile([{ t: 'dev', name: rec.name, v: null }]);
          queue.push(...heldDevTs(rec));
        }
      } else if (major === LOOP_MAJOR) {
        const loop = this.state.loops.get(minor);
        if (loop?.detachPending && !this.state.loopInUse(minor)) this.commitVolatile([{ t: 'loop', minor, v: null }]);
      }
    }
  }

  /** Once per instance: finish any deferred work a killed process left (O(devices), once). */
  private settleAll(): void {
    const pending: string[] = [];
    for (const rec of this.state.devices.values()) if (rec.deferredRemove) pending.push(dmDevT(rec.minor));
    for (const loop of this.state.loops.values()) if (loop.detachPending) pending.push(loopDevT(loop.minor));
    this.settle(pending);
  }

  private info0(rec: DmDeviceRecord): DmInfo {
    return {
      name: rec.name,
      uuid: rec.uuid,
      major: DM_MAJOR,
      minor: rec.minor,
      openCount: this.state.openCount(rec),
      suspended: rec.suspended,
      liveTable: rec.live !== null,
      inactiveTable: rec.inactive !== null,
      readOnly: rec.readOnly,
      eventNr: rec.eventNr,
      targetCount: rec.live?.parsed.length ?? 0,
      devPath: `/dev/dm-${rec.minor}`,
    };
  }

  // --- device-mapper -----------------------------------------------------------------------------

  async listDevices(): Promise<DmInfo[]> {
    return this.read('dm.list', '', () => [...this.state.devices.values()].sort((a, b) => a.name.localeCompare(b.name)).map((rec) => this.info0(rec)));
  }

  async info(name: string): Promise<DmInfo | null> {
    return this.read('dm.info', name, () => {
      const rec = this.state.devices.get(name);
      return rec ? this.info0(rec) : null;
    });
  }

  async create(name: string, uuid: string, table?: DmTarget[], opts: { readOnly?: boolean } = {}): Promise<DmInfo> {
    return this.mutate('dm.create', name, () => {
      if (name === '' || name === '.' || name === '..' || name.includes('/') || name.length > MAX_NAME_LENGTH) {
        fail('EINVAL', `invalid device name ${JSON.stringify(name)}`);
      }
      if (uuid.length > MAX_UUID_LENGTH) fail('EINVAL', 'uuid too long');
      if (this.state.devices.has(name)) fail('EBUSY', `a device named ${name} exists`);
      if (uuid !== '' && this.state.byUuid.has(uuid)) fail('EBUSY', `a device with uuid ${uuid} exists (${this.state.byUuid.get(uuid)})`);
      let rec: DmDeviceRecord = {
        name,
        uuid,
        minor: this.state.lowestFreeMinor(),
        readOnly: opts.readOnly ?? false,
        suspended: false,
        eventNr: 0,
        deferredRemove: false,
        live: null,
        inactive: null,
        pool: null,
      };
      if (table) {
        // libdevmapper creates, loads and resumes, and removes the device again if a step fails;
        // so a failed create leaves no device (work the pool's constructor did on its metadata stays).
        const loaded = this.loadTable(rec, table);
        rec = this.resumed({ ...rec, live: loaded, suspended: true });
      }
      this.putDevice(rec);
      return this.info0(rec);
    });
  }

  async load(name: string, table: DmTarget[]): Promise<void> {
    return this.mutate('dm.load', name, () => {
      const rec = this.device(name);
      const loaded = this.loadTable(rec, table);
      this.putDevice({ ...rec, inactive: loaded });
    });
  }

  async suspend(name: string, _opts: { noFlush?: boolean } = {}): Promise<void> {
    return this.mutate('dm.suspend', name, () => {
      const rec = this.device(name);
      if (rec.suspended) return;
      this.putDevice({ ...rec, suspended: true });
    });
  }

  async resume(name: string): Promise<void> {
    return this.mutate('dm.resume', name, () => {
      const rec = this.device(name);
      if (!rec.inactive && !rec.suspended) return;
      if (rec.inactive) {
        // DM_DEV_SUSPEND(resume) swaps the inactive table in, then runs the targets' preresume;
        // when that fails the new table stays live and the device stays suspended.
        const swapped: DmDeviceRecord = { ...rec, live: rec.inactive, inactive: null, suspended: true };
        try {
          this.putDevice(this.resumed(swapped));
        } catch (e) {
          this.putDevice({ ...swapped, pool: swapped.live?.poolId && rec.pool?.poolId === swapped.live.poolId ? rec.pool : null });
          throw e;
        }
        return;
      }
      this.putDevice(this.resumed(rec));
    });
  }

  async remove(name: string, opts: { deferred?: boolean } = {}): Promise<void> {
    return this.mutate('dm.remove', name, () => {
      const rec = this.device(name);
      if (this.state.openCount(rec) > 0) {
        if (!opts.deferred) fail('EBUSY', `${name} is open (${this.state.openCount(rec)} openers)`);
        if (!rec.deferredRemove) this.putDevice({ ...rec, deferredRemove: true });
        return;
      }
      this.commitVolatile([{ t: 'dev', name, v: null }]);
      this.settle(heldDevTs(rec));
    });
  }

  async table(name: string): Promise<DmTarget[]> {
    return this.read('dm.table', name, () => {
      const rec = this.device(name);
      return (rec.live?.parsed ?? []).map((t) => ({ start: t.start, length: t.length, type: t.type, params: tableParams(t) }));
    });
  }

  async status(name: string): Promise<DmTarget[]> {
    return this.read('dm.status', name, () => {
      const rec = this.device(name);
      return (rec.live?.parsed ?? []).map((t) => ({ start: t.start, length: t.length, type: t.type, params: this.statusParams(rec, t) }));
    });
  }

  async message(name: string, message: string): Promise<string> {
    return this.mutate(`dm.message ${message.trim()}`, name, () => {
      const rec = this.device(name);
      const text = message.trim();
      if (text.toLowerCase() === '@cancel_deferred_remove') {
        if (rec.deferredRemove) this.putDevice({ ...rec, deferredRemove: false });
        return '';
      }
      const target = rec.live?.parsed[0];
      if (rec.live?.parsed.length !== 1 || target?.type !== 'thin-pool' || !rec.pool) {
        fail('EINVAL', `${name} has no target that takes messages`);
      }
      if (rec.pool.mode === 'out_of_metadata_space' || rec.pool.mode === 'ro') {
        fail('EOPNOTSUPP', 'unable to service pool target messages in READ_ONLY or FAIL mode');
      }
      const model = this.poolModel(rec.pool.poolId);
      const parsed = parsePoolMessage(text);
      let op: PoolOp | null;
      try {
        op = model.decideMessage(parsed, (id) => this.state.thinInUse(model.poolId, id));
      } catch (e) {
        if (e instanceof SimErrno && e.errnoName === 'ENOSPC') this.setPoolMode(rec.name, 'out_of_metadata_space');
        throw e;
      }
      if (op) this.persistent.commit([op]);
      this.afterPoolChange(rec.name);
      return '';
    });
  }

  // --- tables: constructors and resume -------------------------------------------------------------

  /** The target constructors: check a table against the devices that exist, open what it names. */
  private loadTable(rec: DmDeviceRecord, table: DmTarget[]): LoadedTable {
    const parsed = parseTable(table);
    if (rec.live?.parsed[0]?.type === 'thin-pool' && parsed[0].type !== 'thin-pool') {
      fail('EINVAL', "can't replace immutable target type thin-pool");
    }
    for (const dev of devicesHeld(parsed)) {
      if (dev.major === DM_MAJOR && dev.minor === rec.minor) fail('EINVAL', 'a table cannot name its own device');
      this.deviceSizeSectors(dev); // ENXIO when it does not exist
    }
    const loaded: LoadedTable = { parsed };
    for (const t of parsed) {
      if (t.type === 'thin-pool') loaded.poolId = this.constructPool(rec, t);
      else if (t.type === 'thin') loaded.thinPoolId = this.constructThin(t.poolDev, t.thinId);
      else if (t.type === 'linear') {
        if (t.offset + t.length > this.deviceSizeSectors(t.dev)) fail('EINVAL', `device ${formatDevT(t.dev)} too small for the linear target`);
      }
    }
    return loaded;
  }

  /** pool_ctr: open the metadata (formatting a blank device) and check the data device. */
  private constructPool(rec: DmDeviceRecord, t: PoolTarget): string {
    if (t.metadataDev.major !== LOOP_MAJOR) fail('EOPNOTSUPP', 'the simulated kernel keeps pool metadata on loop devices only');
    const metadataLoop = this.state.loops.get(t.metadataDev.minor)!;
    if (t.length > this.deviceSizeSectors(t.dataDev)) fail('EINVAL', `data device ${formatDevT(t.dataDev)} is smaller than the pool target`);
    if (!t.features.readOnly) {
      for (const dev of [t.metadataDev, t.dataDev]) {
        if (dev.major === LOOP_MAJOR && this.state.loops.get(dev.minor)!.readOnly) fail('EACCES', `${formatDevT(dev)} is read-only`);
      }
    }
    const header = readMetadataHeader(metadataLoop.backingFile);
    if (header.kind === 'foreign') fail('EINVAL', 'metadata device does not hold thin-pool metadata (zero its first 4 KiB to format it)');
    let poolId: string;
    if (header.kind === 'blank') {
      if (t.features.readOnly) fail('EINVAL', 'cannot format blank metadata for a read_only pool');
      const metadataBlocks = Math.min(MAX_METADATA_BLOCKS, Math.floor(metadataLoop.sizeBytes / METADATA_BLOCK_BYTES));
      const dataBlocks = Math.floor(t.length / t.blockSectors);
      if (dataBlocks === 0) fail('EINVAL', 'pool target smaller than one data block');
      const fresh = new PoolMetadata('', t.blockSectors, dataBlocks, metadataBlocks);
      fresh.checkMetadataSpace(0);
      poolId = newPoolId();
      this.persistent.commit([{ t: 'format', pool: poolId, blockSectors: t.blockSectors, dataBlocks, metadataBlocks }]);
      writeMetadataHeader(metadataLoop.backingFile, poolId, this.fsync);
    } else {
      poolId = header.poolId;
      const model = this.persistent.pool(poolId);
      if (!model) fail('EINVAL', `metadata names pool ${poolId}, which this simulated kernel does not hold`);
      if (model.blockSectors !== t.blockSectors) {
        fail('EINVAL', `changing the data block size (from ${model.blockSectors} to ${t.blockSectors}) is not supported`);
      }
    }
    const owner = this.state.poolDevice.get(poolId);
    if (owner !== undefined && owner !== rec.name) fail('EBUSY', `metadata device already in use by a pool (${owner})`);
    if (rec.pool && rec.pool.poolId !== poolId) fail('EINVAL', 'different pool cannot replace a pool');
    const current = rec.live?.parsed[0];
    if (rec.pool && current?.type === 'thin-pool' && current.features.discardEnabled !== t.features.discardEnabled) {
      fail('EINVAL', 'Discard support cannot be disabled once enabled');
    }
    return poolId;
  }

  /** thin_ctr: the pool device must be a resumed pool, and the thin id must exist in it. */
  private constructThin(poolDev: DevT, thinId: number): string {
    const poolName = poolDev.major === DM_MAJOR ? this.state.byMinor.get(poolDev.minor) : undefined;
    const poolRec = poolName === undefined ? undefined : this.state.devices.get(poolName);
    if (!poolRec?.pool) fail('EINVAL', `Couldn't find pool object for ${formatDevT(poolDev)}`);
    if (poolRec.suspended) fail('EINVAL', 'Unable to activate thin device while pool is suspended');
    const model = this.poolModel(poolRec.pool.poolId);
    if (!model.hasThin(thinId)) fail('ENODATA', `Couldn't open thin internal device ${thinId}`);
    return model.poolId;
  }

  /** Resume: a pool's preresume checks and grows its data and metadata sizes, then I/O flows. */
  private resumed(rec: DmDeviceRecord): DmDeviceRecord {
    const target = rec.live?.parsed[0];
    if (!rec.live || target?.type !== 'thin-pool' || !rec.live.poolId) return { ...rec, suspended: false, pool: null };
    const poolId = rec.live.poolId;
    const model = this.poolModel(poolId);
    const dataBlocks = Math.floor(target.length / target.blockSectors);
    if (dataBlocks < model.dataBlocks) fail('EINVAL', `pool target (${dataBlocks} blocks) too small: expected ${model.dataBlocks}`);
    const metadataSize = this.state.loops.get(target.metadataDev.minor)?.sizeBytes ?? 0;
    const metadataBlocks = Math.min(MAX_METADATA_BLOCKS, Math.floor(metadataSize / METADATA_BLOCK_BYTES));
    if (metadataBlocks < model.metadataBlocks) {
      fail('EINVAL', `metadata device (${metadataBlocks} blocks) too small: expected ${model.metadataBlocks}`);
    }
    let eventNr = rec.eventNr;
    if (dataBlocks > model.dataBlocks || metadataBlocks > model.metadataBlocks) {
      this.persistent.commit([{ t: 'resize', pool: poolId, dataBlocks, metadataBlocks }]);
      eventNr++;
    }
    // bind_control_target: the table's requested mode applies; pool_resume re-arms the low water event.
    return { ...rec, suspended: false, eventNr, pool: { poolId, mode: target.features.readOnly ? 'ro' : 'rw', lowWaterTriggered: false } };
  }

  private poolModel(poolId: string): PoolMetadata {
    const model = this.persistent.pool(poolId);
    if (!model) fail('EIO', `pool metadata ${poolId} is missing from the simulated kernel's store`);
    return model;
  }

  private setPoolMode(poolDevName: string, mode: NonNullable<DmDeviceRecord['pool']>['mode']): void {
    const rec = this.state.devices.get(poolDevName);
    if (!rec?.pool || rec.pool.mode === mode || rec.pool.mode === 'ro') return;
    this.putDevice({ ...rec, eventNr: rec.eventNr + 1, pool: { ...rec.pool, mode } });
  }

  /** After a metadata commit: leave out_of_data_space once blocks are free; raise the low water event. */
  private afterPoolChange(poolDevName: string): void {
    const rec = this.state.devices.get(poolDevName);
    if (!rec?.pool) return;
    const model = this.poolModel(rec.pool.poolId);
    const target = rec.live!.parsed[0] as PoolTarget;
    let pool = rec.pool;
    let eventNr = rec.eventNr;
    if (pool.mode === 'out_of_data_space' && model.freeDataBlocks > 0) {
      pool = { ...pool, mode: 'rw' };
      eventNr++;
    }
    if (!pool.lowWaterTriggered && model.freeDataBlocks <= target.lowWaterBlocks) {
      pool = { ...pool, lowWaterTriggered: true };
      eventNr++;
    }
    if (pool !== rec.pool) this.putDevice({ ...rec, eventNr, pool });
  }

  private statusParams(rec: DmDeviceRecord, t: ParsedTarget): string {
    if (t.type === 'thin-pool') {
      const model = this.poolModel(rec.live!.poolId!);
      const metadataDevBlocks = Math.min(MAX_METADATA_BLOCKS, Math.floor((this.state.loops.get(t.metadataDev.minor)?.sizeBytes ?? 0) / METADATA_BLOCK_BYTES));
      return poolStatusParams({
        transactionId: model.transactionId,
        usedMetadataBlocks: model.usedMetadataBlocks(),
        totalMetadataBlocks: model.metadataBlocks,
        usedDataBlocks: model.usedDataBlocks,
        totalDataBlocks: model.dataBlocks,
        heldRoot: model.heldRoot,
        // pool_status commits first, and a commit leaves out_of_data_space when blocks are free.
        mode: rec.pool?.mode === 'out_of_data_space' && model.freeDataBlocks > 0 ? 'rw' : (rec.pool?.mode ?? 'rw'),
        features: t.features,
        needsCheck: false,
        metadataLowWatermark: Math.min(1024, Math.floor(metadataDevBlocks / 4)),
      });
    }
    if (t.type === 'thin') {
      const model = this.poolModel(rec.live!.thinPoolId!);
      return thinStatusParams(model.mappedBlocks(t.thinId), model.highestMappedBlock(t.thinId), model.blockSectors);
    }
    return '';
  }

  // --- loop devices ------------------------------------------------------------------------------

  async loopAttach(file: string, opts: { readOnly?: boolean } = {}): Promise<LoopDevice> {
    const backingFile = path.resolve(file);
    return this.mutate('loop.attach', backingFile, () => {
      let st: fs.Stats;
      try {
        st = fs.statSync(backingFile);
      } catch {
        fail('ENOENT', `${backingFile} does not exist`);
      }
      if (!st.isFile()) fail('EINVAL', `${backingFile} is not a regular file (the simulated kernel loops files only)`);
      const loop: LoopRecord = {
        minor: this.state.lowestFreeLoop(),
        backingFile,
        sizeBytes: Math.floor(st.size / SECTOR_BYTES) * SECTOR_BYTES,
        readOnly: opts.readOnly ?? false,
        detachPending: false,
      };
      this.commitVolatile([{ t: 'loop', minor: loop.minor, v: loop }]);
      return loopDevice(loop);
    });
  }

  async loopFind(file: string): Promise<LoopDevice | null> {
    const backingFile = path.resolve(file);
    return this.read('loop.find', backingFile, () => {
      let found: LoopRecord | null = null;
      for (const loop of this.state.loops.values()) {
        if (loop.backingFile === backingFile && (found === null || loop.minor < found.minor)) found = loop;
      }
      return found ? loopDevice(found) : null;
    });
  }

  async loopList(): Promise<LoopDevice[]> {
    return this.read('loop.list', '', () => [...this.state.loops.values()].sort((a, b) => a.minor - b.minor).map(loopDevice));
  }

  async loopDetach(devPath: string): Promise<void> {
    return this.mutate('loop.detach', devPath, () => {
      const loop = this.loopAt(devPath);
      if (this.state.loopInUse(loop.minor)) {
        // LOOP_CLR_FD on a busy loop sets autoclear: it goes when its last user closes it.
        if (!loop.detachPending) this.commitVolatile([{ t: 'loop', minor: loop.minor, v: { ...loop, detachPending: true } }]);
        return;
      }
      this.commitVolatile([{ t: 'loop', minor: loop.minor, v: null }]);
    });
  }

  async loopSetCapacity(devPath: string): Promise<void> {
    return this.mutate('loop.set-capacity', devPath, () => {
      const loop = this.loopAt(devPath);
      let size: number;
      try {
        size = fs.statSync(loop.backingFile).size;
      } catch {
        fail('EIO', `backing file ${loop.backingFile} is gone`);
      }
      this.commitVolatile([{ t: 'loop', minor: loop.minor, v: { ...loop, sizeBytes: Math.floor(size / SECTOR_BYTES) * SECTOR_BYTES } }]);
    });
  }

  private loopAt(devPath: string): LoopRecord {
    const m = /^\/dev\/loop(\d+)$/.exec(devPath);
    if (!m) fail('ENOENT', `${devPath} is not a loop device`);
    const loop = this.state.loops.get(Number(m[1]));
    if (!loop) fail('ENXIO', `${devPath} has no backing file`);
    return loop;
  }

  // --- block devices -----------------------------------------------------------------------------

  /** The size in sectors of a device named in a table; ENXIO when there is no such device. */
  private deviceSizeSectors(dev: DevT): number {
    if (dev.major === LOOP_MAJOR) {
      const loop = this.state.loops.get(dev.minor);
      if (!loop) fail('ENXIO', `loop device ${formatDevT(dev)} is not attached`);
      return loop.sizeBytes / SECTOR_BYTES;
    }
    if (dev.major === DM_MAJOR) {
      const name = this.state.byMinor.get(dev.minor);
      if (name === undefined) fail('ENXIO', `no device-mapper device ${formatDevT(dev)}`);
      return tableSectors(this.state.devices.get(name)!.live?.parsed ?? []);
    }
    fail('ENXIO', `no device ${formatDevT(dev)} in the simulated kernel`);
  }

  /** /dev/dm-N, /dev/mapper/NAME or /dev/loopN. */
  private resolveBlock(devPath: string): { dm: DmDeviceRecord } | { loop: LoopRecord } {
    let m = /^\/dev\/dm-(\d+)$/.exec(devPath);
    if (m) {
      const name = this.state.byMinor.get(Number(m[1]));
      if (name !== undefined) return { dm: this.state.devices.get(name)! };
    }
    m = /^\/dev\/mapper\/(.+)$/.exec(devPath);
    if (m && this.state.devices.has(m[1])) return { dm: this.state.devices.get(m[1])! };
    m = /^\/dev\/loop(\d+)$/.exec(devPath);
    if (m && this.state.loops.has(Number(m[1]))) return { loop: this.state.loops.get(Number(m[1]))! };
    fail('ENOENT', `no block device ${devPath}`);
  }

  private thinAt(devPath: string): ThinContext {
    const found = this.resolveBlock(devPath);
    if (!('dm' in found)) fail('EOPNOTSUPP', `${devPath}: the simulated kernel keeps data only on thin devices`);
    const rec = found.dm;
    const t = rec.live?.parsed;
    if (t?.length !== 1 || t[0].type !== 'thin' || !rec.live!.thinPoolId) {
      fail('EOPNOTSUPP', `${devPath}: the simulated kernel keeps data only on thin devices`);
    }
    const poolRec = this.state.devices.get(this.state.byMinor.get(t[0].poolDev.minor)!)!;
    const model = this.poolModel(rec.live!.thinPoolId!);
    return { rec, poolRec, poolId: model.poolId, thinId: t[0].thinId, model, blockBytes: model.blockSectors * SECTOR_BYTES };
  }

  /** I/O to a suspended device (or one on a suspended pool) waits in the kernel; here it fails. */
  private checkIoFlows(ctx: ThinContext): void {
    if (ctx.rec.suspended || ctx.poolRec.suspended) fail('EAGAIN', `${ctx.rec.name} is suspended: the kernel would hold the I/O until resume`);
  }

  /**
   * Pool-level effect of I/O to a thin device: unmap (a discard the pool honours), then write
   * (allocating for unmapped blocks, copying shared ones). ENOSPC turns the pool out_of_data_space.
   */
  private thinIo(ctx: ThinContext, writeVblocks: number[], unmapVblocks: number[]): void {
    const ops: PoolOp[] = [];
    const unmap = ctx.model.planUnmap(ctx.thinId, unmapVblocks);
    if (unmap.length > 0) ops.push({ t: 'unmap', pool: ctx.poolId, id: ctx.thinId, vblocks: unmap });
    if (ops.length > 0) {
      this.persistent.commit(ops);
      this.afterPoolChange(ctx.poolRec.name);
    }
    if (writeVblocks.length === 0) return;
    const needing = [...new Set(writeVblocks)].filter((v) => ctx.model.needsNewBlock(ctx.thinId, v));
    const mode = this.state.devices.get(ctx.poolRec.name)?.pool?.mode;
    if (needing.length > 0 && (mode === 'ro' || mode === 'out_of_metadata_space')) fail('EIO', 'the pool is read-only: writes that need new blocks fail');
    const free = ctx.model.freeDataBlocks;
    if (needing.length > free) {
      // The kernel allocates block by block: the blocks that fit are written, then it runs out.
      this.mapBlocks(ctx, needing.slice(0, free));
      this.setPoolMode(ctx.poolRec.name, 'out_of_data_space');
      fail('ENOSPC', `pool ${ctx.poolRec.name} is out of data space (${free} blocks were free, ${needing.length} needed)`);
    }
    this.mapBlocks(ctx, writeVblocks);
  }

  private mapBlocks(ctx: ThinContext, vblocks: number[]): void {
    let plan: { pairs: number[] };
    try {
      plan = ctx.model.planWrite(ctx.thinId, vblocks);
    } catch (e) {
      if (e instanceof SimErrno && e.errnoName === 'ENOSPC') this.setPoolMode(ctx.poolRec.name, 'out_of_metadata_space');
      throw e;
    }
    if (plan.pairs.length > 0) {
      this.persistent.commit([{ t: 'map', pool: ctx.poolId, id: ctx.thinId, pairs: plan.pairs }]);
      this.afterPoolChange(ctx.poolRec.name);
    }
  }

  private poolDiscardEnabled(ctx: ThinContext): boolean {
    const target = ctx.poolRec.live?.parsed[0];
    return target?.type === 'thin-pool' && target.features.discardEnabled;
  }

  async blockDeviceSize(devPath: string): Promise<number> {
    return this.read('blockdev.size', devPath, () => {
      const found = this.resolveBlock(devPath);
      if ('loop' in found) return found.loop.sizeBytes;
      return tableSectors(found.dm.live?.parsed ?? []) * SECTOR_BYTES;
    });
  }

  async discard(devPath: string, offsetBytes = 0, lengthBytes?: number): Promise<void> {
    return this.mutate('discard', devPath, () => {
      const found = this.resolveBlock(devPath);
      const size = 'loop' in found ? found.loop.sizeBytes : tableSectors(found.dm.live?.parsed ?? []) * SECTOR_BYTES;
      const length = lengthBytes ?? size - offsetBytes;
      if (offsetBytes % SECTOR_BYTES !== 0 || length % SECTOR_BYTES !== 0 || offsetBytes < 0 || length < 0 || offsetBytes + length > size) {
        fail('EINVAL', `discard range ${offsetBytes}+${length} is not whole sectors inside the device (${size} bytes)`);
      }
      if ('loop' in found) return; // the simulator keeps no data in backing files
      const ctx = this.thinAt(devPath);
      if (ctx.rec.readOnly) fail('EROFS', `${devPath} is read-only`);
      if (!this.poolDiscardEnabled(ctx)) fail('EOPNOTSUPP', 'the pool was loaded with ignore_discard');
      if (this.state.mountsByMinor.has(ctx.rec.minor)) fail('EBUSY', `${devPath} is mounted (the simulated kernel refuses to discard under a filesystem)`);
      this.checkIoFlows(ctx);
      // Only whole pool blocks inside the range are unmapped; partial ones stay mapped, as in dm-thin.
      const first = Math.ceil(offsetBytes / ctx.blockBytes);
      const end = Math.floor((offsetBytes + length) / ctx.blockBytes);
      const whole = offsetBytes === 0 && length === size;
      const unmap = whole ? ctx.model.mappedVblocks(ctx.thinId) : ctx.model.mappedVblocks(ctx.thinId).filter((v) => v >= first && v < end);
      this.thinIo(ctx, [], unmap);
      if (whole) {
        writeFsState(this.persistent.fsStateFile(ctx.poolId, ctx.thinId), null, this.fsync);
        wipeContent(this.persistent.contentDir(ctx.poolId, ctx.thinId));
      }
    });
  }

  // --- filesystems and mounts --------------------------------------------------------------------

  async mkfs(devPath: string, fsType: Filesystem, opts: { label?: string } = {}): Promise<void> {
    return this.mutate('mkfs', devPath, () => {
      const ctx = this.thinAt(devPath);
      if (this.state.mountsByMinor.has(ctx.rec.minor)) fail('EBUSY', `${devPath} is mounted; will not make a filesystem here`);
      if (ctx.rec.readOnly) fail('EROFS', `${devPath} is read-only`);
      this.checkIoFlows(ctx);
      const size = tableSectors(ctx.rec.live!.parsed) * SECTOR_BYTES;
      const layout = mkfsLayout(fsType, size, opts.label ?? '');
      // mke2fs and mkfs.xfs discard the whole device first when it supports discard.
      const unmap = this.poolDiscardEnabled(ctx) ? ctx.model.mappedVblocks(ctx.thinId) : [];
      this.thinIo(ctx, poolBlocksTouched(layout.written, ctx.blockBytes), unmap);
      const content = this.persistent.contentDir(ctx.poolId, ctx.thinId);
      wipeContent(content);
      if (fsType === 'ext4') fs.mkdirSync(path.join(content, 'lost+found'), { mode: 0o700 });
      writeFsState(this.persistent.fsStateFile(ctx.poolId, ctx.thinId), layout.state, this.fsync);
    });
  }

  async growfs(devPath: string, mountpoint: string, fsType: Filesystem): Promise<void> {
    const where = path.resolve(mountpoint);
    return this.mutate('growfs', where, () => {
      const mount = this.state.mounts.get(where);
      if (!mount) fail('EINVAL', `${where} is not mounted`);
      const ctx = this.thinAt(devPath);
      if (mount.minor !== ctx.rec.minor) fail('EINVAL', `${devPath} is not what is mounted at ${where}`);
      if (mount.fstype !== fsType) fail('EINVAL', `${where} holds ${mount.fstype}, not ${fsType}`);
      if (mount.readOnly) fail('EROFS', `${where} is mounted read-only`);
      this.checkIoFlows(ctx);
      const file = this.persistent.fsStateFile(ctx.poolId, ctx.thinId);
      const state = readFsState(file);
      if (!state) fail('EINVAL', `${devPath} has no filesystem`);
      const grown = growLayout(state, tableSectors(ctx.rec.live!.parsed) * SECTOR_BYTES);
      this.thinIo(ctx, poolBlocksTouched(grown.written, ctx.blockBytes), []);
      writeFsState(file, grown.state, this.fsync);
    });
  }

  async mount(devPath: string, mountpoint: string, fsType: Filesystem, opts: MountOptions = {}): Promise<void> {
    const where = path.resolve(mountpoint);
    return this.mutate('mount', where, () => {
      checkMountpointParents(where);
      if (this.state.mounts.has(where)) fail('EBUSY', `${where} is mounted already`);
      const found = this.resolveBlock(devPath);
      if ('loop' in found) fail('EINVAL', `${devPath}: no ${fsType} filesystem (the simulated kernel keeps filesystems on thin devices only)`);
      const ctx = this.thinAt(devPath);
      this.checkIoFlows(ctx);
      const state = readFsState(this.persistent.fsStateFile(ctx.poolId, ctx.thinId));
      if (!state) fail('EINVAL', `${devPath}: no filesystem (wrong fs type, bad superblock)`);
      if (state.type !== fsType) fail('EINVAL', `${devPath} holds ${state.type}, not ${fsType}`);
      if (state.sizeBytes > tableSectors(ctx.rec.live!.parsed) * SECTOR_BYTES) fail('EINVAL', `${devPath}: the filesystem is larger than the device`);
      if (ctx.rec.readOnly && !opts.readOnly) fail('EACCES', `${devPath} is write-protected`);
      checkMountpoint(where);
      checkMountpoint(this.mountedAt(where));
      const record: MountRecord = {
        mountpoint: where,
        source: devPath,
        minor: ctx.rec.minor,
        fstype: fsType,
        readOnly: opts.readOnly ?? false,
        discard: opts.discard ?? false,
        suid: opts.suid ?? false,
        dev: opts.dev ?? false,
        poolId: ctx.poolId,
        thinId: ctx.thinId,
      };
      this.commitVolatile([{ t: 'mount', mountpoint: where, v: record }]);
      attachMountpoint(this.mountedAt(where), this.persistent.contentDir(ctx.poolId, ctx.thinId));
    });
  }

  async unmount(mountpoint: string, opts: UnmountOptions = {}): Promise<void> {
    const where = path.resolve(mountpoint);
    return this.mutate('umount', where, () => {
      checkMountpointParents(where);
      const mount = this.state.mounts.get(where);
      // UMOUNT_NOFOLLOW: a symlink that is not one of the simulator's mounts is refused as the kernel backend does.
      if (!mount && isSymlink(where)) fail('ELOOP', `${where} is a symlink; unmount never follows one`);
      if (!mount) fail('EINVAL', `${where} is not a mountpoint`);
      if (opts.device && (opts.device.major !== DM_MAJOR || opts.device.minor !== mount.minor)) {
        fail('EPERM', `the mount at ${where} is ${DM_MAJOR}:${mount.minor}, not ${opts.device.major}:${opts.device.minor}'s; left alone`);
      }
      if (!mount.readOnly) this.account(mount);
      detachMountpoint(this.mountedAt(where));
      this.commitVolatile([{ t: 'mount', mountpoint: where, v: null }]);
      this.settle([dmDevT(mount.minor)]);
    });
  }

  /**
   * Where a mount's files are seen on this host: under the simulator's own directory
   * (simMountPath), never at the mountpoint itself. The mountpoint is still checked where the real
   * kernel would reach it (no symlink, trusted parents, empty), which only reads the host.
   */
  mountedAt(mountpoint: string): string {
    return simMountPath(this.dir, mountpoint);
  }

  async mounts(): Promise<MountEntry[]> {
    return this.read('mounts', '', () =>
      [...this.state.mounts.values()].map((m) => ({
        source: m.source,
        major: DM_MAJOR,
        minor: m.minor,
        mountpoint: m.mountpoint,
        fstype: m.fstype,
        options: [m.readOnly ? 'ro' : 'rw', ...(m.suid ? [] : ['nosuid']), ...(m.dev ? [] : ['nodev']), 'relatime', ...(m.discard ? ['discard'] : [])],
      })),
    );
  }

  async sync(mountpoint?: string): Promise<void> {
    const where = mountpoint === undefined ? undefined : path.resolve(mountpoint);
    return this.mutate('sync', where ?? '', () => {
      const targets = where === undefined ? [...this.state.mounts.values()] : [this.state.mounts.get(where)].filter((m): m is MountRecord => !!m);
      for (const mount of targets) if (!mount.readOnly) this.account(mount);
    });
  }

  /**
   * Writeback: make the pool's mappings match the files under a mount. Changed files are
   * rewritten (copy-on-write where shared); with `discard`, blocks of deleted files are unmapped.
   */
  private account(mount: MountRecord): void {
    const ctx = this.thinAt(`/dev/dm-${mount.minor}`);
    const file = this.persistent.fsStateFile(ctx.poolId, ctx.thinId);
    const state = readFsState(file);
    if (!state) return;
    const plan = planAccounting(state, scanContent(this.persistent.contentDir(ctx.poolId, ctx.thinId)));
    if (plan.written.length === 0 && plan.freed.length === 0) return;
    this.checkIoFlows(ctx);
    const unmap = mount.discard && this.poolDiscardEnabled(ctx) ? poolBlocksNowFree(plan.freed, plan.next.free, ctx.blockBytes, plan.next.fsBlocks) : [];
    this.thinIo(ctx, poolBlocksTouched(plan.written, ctx.blockBytes), unmap);
    writeFsState(file, plan.next, this.fsync);
  }

  async listThinIds(_poolDmName: string, metadataDevPath: string): Promise<number[]> {
    return this.read('thin_ls', metadataDevPath, () => simThinIds(this.persistent, [...this.state.loops.values()].map(loopDevice), metadataDevPath));
  }

  async thinMappedBytes(_poolDmName: string, metadataDevPath: string, thinId: number): Promise<number> {
    return this.read('thin_ls', metadataDevPath, () =>
      simMappedBytes(this.persistent, [...this.state.loops.values()].map(loopDevice), metadataDevPath, thinId),
    );
  }

  async close(): Promise<void> {
    // Nothing is held open between calls.
  }

  // --- simulator only ----------------------------------------------------------------------------

  /**
   * A power cut and boot: device-mapper devices, loop attachments and mounts vanish (mountpoints
   * become empty directories again); pool metadata and device contents stay. Writes not yet
   * accounted by sync or unmount stay in the files but are accounted only at the next writeback.
   */
  async reboot(): Promise<void> {
    return this.mutate('reboot', this.dir, () => {
      for (const mountpoint of this.state.mounts.keys()) detachMountpoint(this.mountedAt(mountpoint));
      this.volatile.journal.reset();
    });
  }
}

function tableParams(t: ParsedTarget): string {
  switch (t.type) {
    case 'thin-pool':
      return poolTableParams({
        metadataDev: t.metadataDev,
        dataDev: t.dataDev,
        blockSectors: t.blockSectors,
        lowWaterBlocks: t.lowWaterBlocks,
        features: t.features,
      });
    case 'thin':
      return thinTableParams(t.poolDev, t.thinId);
    case 'linear':
      return linearTableParams(t.dev, t.offset);
    default:
      return '';
  }
}

function loopDevice(loop: LoopRecord): LoopDevice {
  return {
    path: `/dev/loop${loop.minor}`,
    major: LOOP_MAJOR,
    minor: loop.minor,
    backingFile: loop.backingFile,
    sizeBytes: loop.sizeBytes,
    readOnly: loop.readOnly,
  };
}

function heldDevTs(rec: DmDeviceRecord): string[] {
  const held = new Set<string>();
  for (const table of [rec.live, rec.inactive]) if (table) for (const dev of devicesHeld(table.parsed)) held.add(formatDevT(dev));
  return [...held];
}

function releasedBy(before: DmDeviceRecord, after: DmDeviceRecord): string[] {
  const still = new Set(heldDevTs(after));
  return heldDevTs(before).filter((d) => !still.has(d));
}

/**
 * As the kernel backend walks a mountpoint (src/kernel/linux/mountpoint.ts): no symlink among the
 * parents (ELOOP), each directory above one that only root can change (EPERM). What is missing is
 * made later, by attachMountpoint.
 */
function checkMountpointParents(where: string): void {
  const names = where.split('/').filter((n) => n !== '');
  let reached = '';
  for (const [i, name] of names.entries()) {
    const above = reached || '/';
    const why = untrustedDirectory(fs.lstatSync(above));
    if (why) fail('EPERM', `${above}: ${why}; whoever can change it could redirect the mount`);
    if (i === names.length - 1) return;
    reached = `${reached}/${name}`;
    let st: fs.Stats;
    try {
      st = fs.lstatSync(reached);
    } catch {
      return;
    }
    if (st.isSymbolicLink()) fail('ELOOP', `${reached} is a symlink; the kernel backend never mounts through one`);
    if (!st.isDirectory()) fail('ENOTDIR', `${reached} is not a directory`);
  }
}

function isSymlink(where: string): boolean {
  try {
    return fs.lstatSync(where).isSymbolicLink();
  } catch {
    return false;
  }
}

/** The checks attachMountpoint makes, before the mount is journalled. */
function checkMountpoint(where: string): void {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(where);
  } catch {
    return; // made at attach time
  }
  // A mount of the simulator is a symlink too, but those were found busy before this check.
  if (st.isSymbolicLink()) fail('ELOOP', `${where} is a symlink; the kernel backend never mounts through one`);
  if (!st.isDirectory()) fail('ENOTDIR', `${where} is not a directory`);
  if (fs.readdirSync(where).length > 0) fail('EBUSY', `${where} is not empty (the simulated kernel cannot hide a directory's files)`);
}
