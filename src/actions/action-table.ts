// The imperative half of each step: what one planned step does to the kernel and the state dir.
// Every action is idempotent, because after a crash recovery runs it again: "already done" answers
// from the kernel (EEXIST for a create that rolls forward this log's pending intent, ENODATA for a
// delete, ENXIO for a remove, EINVAL for an unmount of something not mounted) count as success.
// An existing device is adopted only with exactly the uuid the log recorded and the table thinlayer
// would load (src/domain/ownership.ts).

import { open, unlink, stat } from 'node:fs/promises';
import type { DmInfo, DmTarget } from '../kernel/kernel-port.ts';
import type { Backing } from '../model/manifest.ts';
import { KernelError, isKernelError, StateError, InternalError } from '../errors/index.ts';
import { splitDevT } from '../kernel/dev-t.ts';
import {
  sendFenced,
  createThinMessage,
  createSnapMessage,
  deleteMessage,
  setTransactionIdMessage,
  transactionIdOf,
  newPoolTable,
  poolTarget,
  parsePoolTable,
  grownPoolTable,
} from '../kernel/thin-pool.ts';
import type { ThinArgs, CreateArgs, CreateResult, StepArgs as ActionArgs, StepResult as ActionResult } from '../model/step-contract.ts';
import type { ActionContext, ActionTable } from './action-context.ts';
import { commitLayer } from './layer-commit.ts';
import { resizeThin } from './thin-resize.ts';
import { growFilesystem } from './fs-grow.ts';
import { deviceInfo, forgetDevice, knownDevice, rememberDevice } from '../engine/device-memo.ts';
import { describeOwner } from '../domain/ownership.ts';
import { backingPath, poolTableDevices, thinTableTarget } from '../engine/observe-system.ts';
import { SECTOR_BYTES } from '../model/units.ts';

export type { ActionContext, Action, ActionTable } from './action-context.ts';

async function tolerate<T>(work: () => Promise<T>, ...errnos: Parameters<typeof isKernelError>[1][]): Promise<T | undefined> {
  try {
    return await work();
  } catch (e) {
    if (errnos.some((n) => isKernelError(e, n))) return undefined;
    throw e;
  }
}

/** The block device behind a backing (the loop device for a file) and its major:minor. */
async function blockDeviceOf(ctx: ActionContext, b: Backing): Promise<{ path: string; majorMinor: string }> {
  const path = backingPath(ctx.stateDir, b);
  if (b.kind === 'file') {
    const loop = await ctx.kernel.loopFind(path);
    if (!loop) throw new StateError(`${path} is not attached to a loop device`, 'E_POOL');
    return { path: loop.path, majorMinor: `${loop.major}:${loop.minor}` };
  }
  const st = await stat(path);
  const { major, minor } = splitDevT(st.rdev);
  return { path, majorMinor: `${major}:${minor}` };
}

async function requireInfo(ctx: ActionContext, dmName: string, op: string): Promise<DmInfo> {
  const info = await deviceInfo(ctx, dmName);
  if (!info) throw new KernelError(op, dmName, 6, 'no such device-mapper device');
  return info;
}

async function poolMajorMinor(ctx: ActionContext): Promise<string> {
  if (ctx.memo?.poolDevT) return ctx.memo.poolDevT;
  // From the kernel, not the device memo: the pool may have been made by this very run.
  const info = await ctx.kernel.info(ctx.poolDmName);
  if (!info) throw new KernelError('dm.info', ctx.poolDmName, 6, 'no such device-mapper device');
  const devT = `${info.major}:${info.minor}`;
  if (ctx.memo) ctx.memo.poolDevT = devT;
  return devT;
}

/** How far a create looks for a free thin id past one that is taken before it gives up. */
const MAX_ID_PROBES = 4096;

/** The thin id a thing has in this run: the planned one, unless a collision moved it (see createFenced). */
function thinIdOf(ctx: ActionContext, dmName: string, planned: number): number {
  return ctx.memo?.reallocated?.get(dmName) ?? planned;
}

function notOwned(dmName: string, uuid: string, ours: string): StateError {
  return new StateError(
    `a device named ${dmName} exists with uuid "${uuid}", not this state directory's "${ours}": it belongs to ${describeOwner(uuid)}; thinlayer does not touch devices it does not own`,
    'E_NOT_OWNED',
  );
}

/**
 * create_thin or create_snap under the fence. EEXIST is this log's own create having landed only when
 * the step rolls forward a create whose intent is pending in this log (`resume`); otherwise the id
 * is held by something this log never created: a collision. It is reported, and the next free id
 * is taken (each EEXIST changes nothing in the pool); the result says which id the thing got, the
 * projection records it, and the run's later steps use it.
 */
async function createFenced(ctx: ActionContext, a: CreateArgs, message: (id: number) => string): Promise<CreateResult> {
  if (ctx.txid === undefined) throw new InternalError(`metadata step "${message(a.thinId)}" has no transaction id`);
  let id: number = a.thinId;
  for (let probes = 0; ; probes++) {
    try {
      await ctx.kernel.message(ctx.poolDmName, message(id));
      break;
    } catch (e) {
      if (!isKernelError(e, 'EEXIST')) throw e;
      if (a.resume === true && id === a.thinId) break;
      if (probes >= MAX_ID_PROBES)
        throw new StateError(`thin ids ${a.thinId} to ${id} are all taken in pool ${ctx.poolDmName}, and this log created none of them`, 'E_THIN_ID_COLLISION');
      id += 1;
    }
  }
  await ctx.kernel.message(ctx.poolDmName, setTransactionIdMessage(ctx.txid, ctx.txid + 1));
  if (id === a.thinId) return { txid: ctx.txid + 1 };
  if (ctx.memo) {
    ctx.memo.reallocated ??= new Map();
    ctx.memo.reallocated.set(a.dmName, id);
  }
  ctx.reporter?.notify({
    code: 'warning',
    text: `thin id ${a.thinId} is already in pool ${ctx.poolDmName} and this log never created it (a collision): ${a.dmName} got thin id ${id} instead`,
  });
  return { txid: ctx.txid + 1, thinId: id, collidedWith: a.thinId };
}

/** A metadata change under the transaction-id fence (src/kernel/thin-pool.ts): answers the new id. */
async function fenced(ctx: ActionContext, message: string, ...tolerated: Parameters<typeof sendFenced>[4][]): Promise<{ txid: number }> {
  return { txid: await sendFenced(ctx.kernel, ctx.poolDmName, ctx.txid, message, ...tolerated) };
}

/** Activate a thin device, or adopt it if a previous attempt already did. */
export async function activateThin(ctx: ActionContext, a: ThinArgs): Promise<DmInfo> {
  const thinId = thinIdOf(ctx, a.dmName, a.thinId);
  const table = async () => [thinTarget({ ...a, thinId }, await poolMajorMinor(ctx))];
  if (!knownDevice(ctx, a.dmName)) {
    // Absent as far as this run knows, or not looked at: most devices being activated do not exist
    // yet, so create first. A taken name fails the create before it changes anything, and sends us
    // to adopt it below.
    try {
      const info = await ctx.kernel.create(a.dmName, a.uuid, await table());
      rememberDevice(ctx, a.dmName, info);
      return info;
    } catch (e) {
      if (!isKernelError(e, 'EBUSY') && !isKernelError(e, 'EEXIST')) throw e;
      forgetDevice(ctx, a.dmName, false); // there after all: ask the kernel what it is
    }
  }
  const existing = await deviceInfo(ctx, a.dmName);
  if (existing) {
    if (existing.uuid !== a.uuid) throw notOwned(a.dmName, existing.uuid, a.uuid);
    if (existing.liveTable) {
      // Adopted only with the table thinlayer would load: our pool, our thin id.
      const pool = await poolMajorMinor(ctx);
      const live = (await ctx.kernel.table(a.dmName)).filter((t) => t.type === 'thin');
      const target = live.length === 1 ? thinTableTarget(live[0].params) : null;
      if (!target || target.pool !== pool || target.thinId !== thinId) {
        throw new StateError(
          `device ${a.dmName} has this state directory's uuid but maps ${target ? `thin id ${target.thinId} of ${target.pool}` : 'no single thin target'}, not thin id ${thinId} of the pool (${pool}): refusing to use it (thinlayer down, then up, reloads it)`,
          'E_NOT_OWNED',
        );
      }
      return existing;
    }
    await ctx.kernel.load(a.dmName, await table());
    await ctx.kernel.resume(a.dmName);
    forgetDevice(ctx, a.dmName, false);
    return requireInfo(ctx, a.dmName, 'dm.info');
  }
  // Gone since the create found the name taken (a deferred remove finishing): make it now.
  const info = await ctx.kernel.create(a.dmName, a.uuid, await table());
  rememberDevice(ctx, a.dmName, info);
  return info;
}

function thinTarget(a: ThinArgs, pool: string): DmTarget {
  return { start: 0, length: Math.floor(a.sizeBytes / SECTOR_BYTES), type: 'thin', params: `${pool} ${a.thinId}` };
}

async function removeDevice(ctx: ActionContext, dmName: string): Promise<{ deferred?: boolean }> {
  try {
    await ctx.kernel.remove(dmName);
    forgetDevice(ctx, dmName, true);
    return {};
  } catch (e) {
    if (isKernelError(e, 'ENXIO')) {
      forgetDevice(ctx, dmName, true);
      return {};
    }
    if (isKernelError(e, 'EBUSY')) {
      // Still open (a lazily unmounted filesystem finishing, a process holding it): let the kernel remove it
      // when the last opener goes, rather than failing the whole run.
      await ctx.kernel.remove(dmName, { deferred: true });
      forgetDevice(ctx, dmName, false);
      return { deferred: true };
    }
    throw e;
  }
}

/** Every op's action: the table is total (a missing op does not compile), and each action's types are its op's contract. */
export const ACTIONS = {
  async 'pool.files'(ctx, a) {
    for (const b of [a.data, a.metadata]) {
      if (b.kind !== 'file') continue;
      const path = ctx.stateDir.path(b.file);
      const handle = await open(path, 'wx', 0o600).catch((e) => (e.code === 'EEXIST' ? null : Promise.reject(e)));
      if (!handle) continue;
      try {
        await handle.truncate(b.sizeBytes); // sparse: no block is allocated until written
        await handle.sync();
      } finally {
        await handle.close();
      }
    }
    return {};
  },

  async 'pool.attach'(ctx, a) {
    const path = ctx.stateDir.path(a.file);
    const loop = (await ctx.kernel.loopFind(path)) ?? (await ctx.kernel.loopAttach(path));
    return { loop: loop.path, major: loop.major, minor: loop.minor };
  },

  async 'pool.activate'(ctx, a) {
    const existing = await ctx.kernel.info(a.dmName);
    const [meta, data] = [await blockDeviceOf(ctx, a.metadata), await blockDeviceOf(ctx, a.data)];
    const dataBytes = await ctx.kernel.blockDeviceSize(data.path);
    const pool = newPoolTable(meta.majorMinor, data.majorMinor, a.blockSizeBytes, dataBytes);
    if (pool.dataBlocks < 2) throw new StateError(`the data device is too small for a pool (${dataBytes} bytes)`, 'E_POOL');
    const table = [poolTarget(pool)];
    // Metadata is never zeroed here: a blank one (a new sparse file) is formatted by the kernel on load,
    // and one that is not blank was formatted by an earlier attempt and must be loaded as it is.
    if (typeof a.noSpaceTimeoutSeconds === 'number') await ctx.kernel.setNoSpaceTimeout?.(a.noSpaceTimeoutSeconds);
    if (existing) {
      if (existing.uuid !== a.uuid) throw notOwned(a.dmName, existing.uuid, a.uuid);
      if (existing.liveTable) {
        // Adopted only when it runs on our own backing devices (the loop devices of our files).
        const live = (await ctx.kernel.table(a.dmName)).find((t) => t.type === 'thin-pool');
        const devs = live ? poolTableDevices(live.params) : null;
        if (!devs || devs.metadata !== meta.majorMinor || devs.data !== data.majorMinor) {
          throw new StateError(
            `pool ${a.dmName} has this state directory's uuid but its table names ${devs ? `${devs.metadata} and ${devs.data}` : 'no thin-pool'}, not our backing ${meta.majorMinor} and ${data.majorMinor}: refusing to use it`,
            'E_NOT_OWNED',
          );
        }
      } else {
        await ctx.kernel.load(a.dmName, table);
        await ctx.kernel.resume(a.dmName);
      }
    } else {
      await ctx.kernel.create(a.dmName, a.uuid, table);
    }
    const poolTxid = transactionIdOf(await ctx.kernel.status(a.dmName)) ?? 0;
    // The log's transaction id is taken from the pool only when the pool was just formatted: a loaded
    // pool that is ahead of the log is a fact doctor reports (a log put back), never overwritten here.
    const sizes = { poolTxid, dataBlocks: pool.dataBlocks, lowWater: pool.lowWater };
    return a.blank === true && !existing?.liveTable ? { txid: poolTxid, ...sizes } : sizes;
  },

  async 'pool.deactivate'(ctx, a) {
    // A thin device removed with deferred remove lets go of the pool a moment after its name goes:
    // retry briefly before handing the pool itself to a deferred remove.
    for (let attempt = 0; ; attempt++) {
      try {
        await tolerate(() => ctx.kernel.remove(a.dmName), 'ENXIO');
        return {};
      } catch (e) {
        if (!isKernelError(e, 'EBUSY')) throw e;
        if (attempt >= 20) {
          await ctx.kernel.remove(a.dmName, { deferred: true });
          return { deferred: true };
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  },

  async 'pool.detach'(ctx, a) {
    await tolerate(() => ctx.kernel.loopDetach(a.loop), 'ENXIO');
    return {};
  },

  async 'pool.delete-files'(_ctx, a) {
    for (const file of a.files) await unlink(file).catch((e) => (e.code === 'ENOENT' ? undefined : Promise.reject(e)));
    return {};
  },

  async 'thin.create'(ctx, a) {
    return createFenced(ctx, a, (id) => createThinMessage(id));
  },

  async 'snap.create'(ctx, a) {
    // dm-thin requires an active origin to be suspended while it is snapshotted, so that the
    // snapshot sees a consistent origin with no I/O in flight.
    const origin = await deviceInfo(ctx, a.originDmName);
    const suspend = origin?.liveTable && !origin.suspended;
    if (suspend) await ctx.kernel.suspend(a.originDmName);
    try {
      const originId = thinIdOf(ctx, a.originDmName, a.originThinId);
      return {
        ...(await createFenced(ctx, a, (id) => createSnapMessage(id, originId))),
        ready: a.ready === true,
        ...(a.digest ? { digest: a.digest } : {}),
        originThinId: originId,
      };
    } finally {
      if (suspend) await ctx.kernel.resume(a.originDmName);
    }
  },

  async 'thin.activate'(ctx, a) {
    const info = await activateThin(ctx, a);
    return { major: info.major, minor: info.minor, devPath: info.devPath };
  },

  async 'fs.mkfs'(ctx, a) {
    const info = await requireInfo(ctx, a.dmName, 'mkfs');
    // Short enough for both: mkfs.xfs refuses a label over 12 characters.
    await ctx.kernel.mkfs(info.devPath, a.filesystem, { label: 'thinlayer' });
    return {};
  },

  async 'layer.commit'(ctx, a) {
    return commitLayer(ctx, a, activateThin);
  },

  async 'layer.adopt'(ctx, a) {
    // Only the record changes: the dm name and uuid are given at the next activation, so the device
    // must not be active under its old name now.
    const info = await deviceInfo(ctx, a.dmName);
    if (info) throw new StateError(`the committed snapshot ${a.dmName} is still active; it must be inactive to become layer ${a.label}`);
    const { dmName: _, ...adoption } = a;
    return adoption;
  },

  async 'pool.grow'(ctx, a) {
    return growPoolFiles(ctx, a);
  },

  async 'orphan.delete'(ctx, a) {
    // A thin id the log does not own (thinlayer gc), under the same fence as every metadata change.
    return { ...(await fenced(ctx, deleteMessage(a.thinId), 'ENODATA')), thinId: a.thinId };
  },

  async 'fs.grow'(ctx, a) {
    return growFilesystem(ctx, a, await requireInfo(ctx, a.dmName, 'growfs'));
  },

  async 'thin.resize'(ctx, a) {
    return resizeThin(ctx, a, thinTarget(a, await poolMajorMinor(ctx)));
  },

  async 'fs.mount'(ctx, a) {
    const info = await requireInfo(ctx, a.dmName, 'mount');
    // nosuid and nodev unless the manifest's mountOptions allow them (layers never do).
    const allowed: string[] = Array.isArray(a.mountOptions) ? a.mountOptions : [];
    try {
      await ctx.kernel.mount(info.devPath, a.mountpoint, a.filesystem, {
        readOnly: a.readOnly,
        discard: true,
        suid: allowed.includes('suid'),
        dev: allowed.includes('dev'),
      });
    } catch (e) {
      // Mounted by an earlier attempt: fine if it is this very device, on top. Anything else there is not ours.
      const mounted = (await ctx.kernel.mounts()).filter((m) => m.mountpoint === a.mountpoint).pop();
      if (!(isKernelError(e, 'EBUSY') && mounted && mounted.major === info.major && mounted.minor === info.minor)) throw e;
    }
    return { mountpoint: a.mountpoint };
  },

  async 'fs.unmount'(ctx, a) {
    // Only this device's mount is ever taken down: with the device gone, nothing mounted there is ours.
    const info = await deviceInfo(ctx, a.dmName);
    if (!info) return {};
    const device = { major: info.major, minor: info.minor };
    try {
      // umount writes the filesystem back itself; no sync of our own first.
      await ctx.kernel.unmount(a.mountpoint, { device });
      return {};
    } catch (e) {
      if (isKernelError(e, 'EINVAL') || isKernelError(e, 'ENOENT')) return {};
      if (isKernelError(e, 'EBUSY')) {
        // A process still has files open there: write back what is dirty now, then detach the mount;
        // the kernel finishes it when the last file closes. The device is checked again: a lazy
        // detach of someone else's mount would be silent.
        await ctx.kernel.sync(a.mountpoint).catch(() => undefined);
        await ctx.kernel.unmount(a.mountpoint, { lazy: true, device });
        return { lazy: true };
      }
      throw e;
    }
  },

  async 'thin.deactivate'(ctx, a) {
    return removeDevice(ctx, a.dmName);
  },

  async 'thin.delete'(ctx, a) {
    if (a.discard) {
      // Discard every block first: the pool passes the discards down to the data device, so a
      // loop-backed pool punches holes in its sparse file and the host gets the space back.
      const info = await activateThin(ctx, a).catch(async (e) => {
        if (!isKernelError(e)) throw e;
        // The thin id is gone already (a delete that crashed before it was logged): leave no empty device behind.
        await tolerate(() => ctx.kernel.remove(a.dmName), 'ENXIO');
        forgetDevice(ctx, a.dmName, true);
        return null;
      });
      if (info) {
        await tolerate(() => ctx.kernel.discard(info.devPath), 'EOPNOTSUPP');
        await removeDevice(ctx, a.dmName);
      }
    }
    return fenced(ctx, deleteMessage(thinIdOf(ctx, a.dmName, a.thinId)), 'ENODATA');
  },
} satisfies ActionTable;

/**
 * Growing a loop-backed pool: extend the sparse backing files, have each loop device take its new
 * size (LOOP_SET_CAPACITY), then reload the thin-pool table with the new data length (load into the
 * inactive slot, suspend, resume). A bigger metadata device is picked up by the kernel at the same
 * resume. Idempotent: every part moves towards the stated sizes only.
 */
async function growPoolFiles(ctx: ActionContext, args: ActionArgs<'pool.grow'>): Promise<ActionResult<'pool.grow'>> {
  const { kernel, stateDir } = ctx;
  for (const g of args.grow) {
    const path = stateDir.path(g.file);
    const handle = await open(path, 'r+');
    try {
      if ((await handle.stat()).size < g.toBytes) {
        await handle.truncate(g.toBytes); // sparse: the new space costs nothing until written
        await handle.sync();
      }
    } finally {
      await handle.close();
    }
    const loop = await kernel.loopFind(path);
    if (loop) await kernel.loopSetCapacity(loop.path);
  }

  const info = await kernel.info(args.dmName);
  if (!info?.liveTable) return { dataBlocks: null, lowWater: null, reloaded: false };
  const live = (await kernel.table(args.dmName)).find((t) => t.type === 'thin-pool');
  if (!live) throw new StateError(`${args.dmName} has no thin-pool table`, 'E_POOL');
  if (args.uuid !== undefined && info.uuid !== args.uuid) throw notOwned(args.dmName, info.uuid, args.uuid);
  const data = await blockDeviceOf(ctx, args.data);
  const grown = grownPoolTable(parsePoolTable(live), await kernel.blockDeviceSize(data.path));
  await kernel.load(args.dmName, [poolTarget(grown)]);
  await kernel.suspend(args.dmName);
  await kernel.resume(args.dmName);
  return { dataBlocks: grown.length / grown.blockSectors, lowWater: grown.lowWater, reloaded: true };
}
