// Growing a loop-backed pool: extend the sparse backing file, have the loop device take its new
// size (LOOP_SET_CAPACITY), then reload the thin-pool table with the new data length (load into the
// inactive slot, suspend, resume). A bigger metadata device is picked up by the kernel at the same
// resume. Used by watch mode's autoextend; a `thinlayer pool grow` command can call it too.
//
// Logged like every kernel step: a step.intent (op 'pool.grow') before anything is touched, a
// step.done or step.failed after. The work is idempotent (it only ever grows to a stated size), so
// an intent a crash left without an outcome is finished by completePendingGrows.

import { open, stat } from 'node:fs/promises';
import type { Session } from './session.ts';
import type { KernelPort, DmTarget } from '../kernel/port.ts';
import type { StateDir } from '../events/state-dir.ts';
import type { Backing } from '../manifest/types.ts';
import { describeOwner, poolIdentityOf } from '../domain/ownership.ts';
import type { StepOp } from '../plan/steps.ts';
import { ThinlayerError, UserError, StateError, errorRecord } from '../errors/index.ts';
import { silentReporter, type Reporter } from '../messages/port.ts';

export const POOL_GROW_OP: StepOp = 'pool.grow';
const SECTOR = 512;

export type PoolRole = 'data' | 'metadata';

export interface GrowRequest {
  /** The data file's new size in bytes (at least its current size). */
  dataBytes?: number;
  /** The metadata file's new size in bytes (at least its current size). */
  metadataBytes?: number;
}

export interface GrowOptions {
  reporter?: Reporter;
  /** Groups the step with a run in the log; a fresh id when not given. */
  runId?: string;
}

/** The intent's args: everything needed to finish the grow after a crash. */
export interface GrowArgs {
  dmName: string;
  /** The pool's uuid as the log recorded it: a device of that name with another uuid is not touched. */
  uuid?: string;
  data: Backing;
  grow: Array<{ role: PoolRole; file: string; fromBytes: number; toBytes: number }>;
}

export interface GrowResult {
  /** The pool's data length in blocks after the reload (null when the pool is not active). */
  dataBlocks: number | null;
  lowWater: number | null;
  /** Whether the live pool table was reloaded (false when the pool is not active: its next activation uses the new size). */
  reloaded: boolean;
}

export async function growPool(session: Session, request: GrowRequest, opts: GrowOptions = {}): Promise<GrowResult> {
  const reporter = opts.reporter ?? silentReporter;
  const spec = session.state.desired?.pool ?? session.state.poolSpec;
  if (!spec) throw new UserError('no pool is recorded in this state dir: run `thinlayer apply -f MANIFEST` first', {}, 'E_NO_POOL');
  const args: GrowArgs = { ...poolIdentityOf(session.state, spec.name), data: spec.data, grow: [] };
  for (const role of ['data', 'metadata'] as const) {
    const wanted = role === 'data' ? request.dataBytes : request.metadataBytes;
    if (wanted === undefined) continue;
    const backing = spec[role];
    if (backing.kind !== 'file') {
      throw new UserError(`the pool's ${role} is the block device ${backing.device}: grow that device itself; thinlayer grows only file-backed pools`, { path: `pool.${role}` }, 'E_POOL_GROW');
    }
    const fromBytes = (await stat(session.stateDir.path(backing.file))).size;
    const toBytes = Math.ceil(wanted / SECTOR) * SECTOR;
    if (toBytes < fromBytes) {
      throw new UserError(`the pool's ${role} file is ${fromBytes} bytes; it can grow but not shrink (asked for ${wanted})`, { path: `pool.${role}.size`, expected: `at least ${fromBytes} bytes` }, 'E_POOL_GROW');
    }
    args.grow.push({ role, file: backing.file, fromBytes, toBytes });
  }
  if (args.grow.length === 0) throw new UserError('nothing to grow: give a new data or metadata size', {}, 'E_POOL_GROW');

  const stepId = `${opts.runId ?? `${Date.now().toString(36)}-${process.pid}`}:${POOL_GROW_OP}`;
  await session.append([{ type: 'step.intent', stepId, op: POOL_GROW_OP, target: 'pool', args: args as unknown as Record<string, unknown> }]);
  return runGrow(session, stepId, args, reporter, false);
}

/** Finishes every pool.grow whose intent was logged without an outcome (a crash mid-grow). */
export async function completePendingGrows(session: Session, reporter: Reporter = silentReporter): Promise<number> {
  let completed = 0;
  for (const [stepId, intent] of Object.entries(session.state.pending)) {
    if (intent.op !== POOL_GROW_OP) continue;
    await runGrow(session, stepId, intent.args as unknown as GrowArgs, reporter, true);
    completed += 1;
  }
  return completed;
}

/** Does the grow whose intent is logged, and logs its outcome. */
async function runGrow(session: Session, stepId: string, args: GrowArgs, reporter: Reporter, recovered: boolean): Promise<GrowResult> {
  let result: GrowResult;
  try {
    result = await performGrow(session.kernel, session.stateDir, args);
  } catch (e) {
    await recordFailure(session, stepId, e);
    throw e;
  }
  await session.append([{ type: 'step.done', stepId, op: POOL_GROW_OP, target: 'pool', result: { ...result }, ...(recovered ? { recovered: true } : {}) }]);
  for (const g of args.grow) reporter.notify({ code: 'pool.grown', role: g.role, fromBytes: g.fromBytes, toBytes: g.toBytes });
  return result;
}

async function recordFailure(session: Session, stepId: string, e: unknown): Promise<void> {
  const error = errorRecord(e);
  await session.append([{ type: 'step.failed', stepId, op: POOL_GROW_OP, target: 'pool', error }]);
}

/** The kernel and file work of a grow. Idempotent: every part moves towards the stated sizes only. */
export async function performGrow(kernel: KernelPort, stateDir: StateDir, args: GrowArgs): Promise<GrowResult> {
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
  if (!info || !info.liveTable) return { dataBlocks: null, lowWater: null, reloaded: false };
  const live = (await kernel.table(args.dmName)).find((t) => t.type === 'thin-pool');
  if (!live) throw new StateError(`${args.dmName} has no thin-pool table`, 'E_POOL');
  if (args.uuid !== undefined && info.uuid !== args.uuid) {
    throw new StateError(`a device named ${args.dmName} exists with uuid "${info.uuid}", not this state directory's "${args.uuid}": it belongs to ${describeOwner(info.uuid)}; thinlayer does not touch devices it does not own`, 'E_NOT_OWNED');
  }

  // Params: metadata_dev data_dev data_block_size low_water_mark #features features...
  const fields = live.params.trim().split(/\s+/);
  const blockSectors = Number(fields[2]);
  const oldLowWater = Number(fields[3]);
  const dataBytes = await kernel.blockDeviceSize(await dataDevicePath(kernel, stateDir, args.data));
  const blocks = Math.floor(dataBytes / (blockSectors * SECTOR));
  // Never shorter than the live table: a data device that looks smaller is not shrunk under the pool.
  const length = Math.max(live.length, blocks * blockSectors);
  // The low-water mark keeps its share of the pool, so the kernel's warning comes as early as before.
  const lowWater = length === live.length ? oldLowWater : Math.max(1, Math.round((oldLowWater * length) / live.length));
  const table: DmTarget[] = [{ start: 0, length, type: 'thin-pool', params: [fields[0], fields[1], fields[2], String(lowWater), ...fields.slice(4)].join(' ') }];
  await kernel.load(args.dmName, table);
  await kernel.suspend(args.dmName);
  await kernel.resume(args.dmName);
  return { dataBlocks: length / blockSectors, lowWater, reloaded: true };
}

async function dataDevicePath(kernel: KernelPort, stateDir: StateDir, data: Backing): Promise<string> {
  if (data.kind === 'device') return data.device;
  const path = stateDir.path(data.file);
  const loop = await kernel.loopFind(path);
  if (!loop) throw new StateError(`the pool's data file ${path} is not attached to a loop device`, 'E_POOL');
  return loop.path;
}
