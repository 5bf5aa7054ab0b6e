// Changes to what exists, judged before anything is planned: a manifest edit is either carried out
// or refused, never accepted and ignored. Pure.
//
// Refused (exit 2, naming the manifest file, the field, the recorded value and the way out):
// pool.name, pool.blockSize, pool.filesystem and the pool's backing files or devices, which the pool
// and every filesystem in it were made with; a lowered data.size or metadata.size (a pool never
// shrinks); a device's lowered size (a filesystem is not shrunk under its data).
// Carried out: a raised data.size or metadata.size grows the pool (poolGrowth, the path of
// `thinlayer pool grow`); a device's raised size grows it and its filesystem (device-changes.ts).

import type { EngineState } from '../model/engine-state.ts';
import { makeStep, type Step, type PoolGrowArgs, type PoolRole } from '../model/step-contract.ts';
import type { Backing, Manifest, PoolSpec } from '../model/manifest.ts';
import { formatSize } from '../manifest/sizes.ts';
import { thingKey } from '../domain/names.ts';
import { UserError, type ErrorCode } from '../errors/index.ts';
import { SECTOR_BYTES } from '../model/units.ts';
import { formatBytes } from '../messages/format.ts';

const RECREATE = 'run `thinlayer destroy` and apply again to re-create the pool (this deletes every device in it), or put the recorded value back';

/** The pool was made: its spec is recorded and the log has the pool or a thin device in it. */
function poolExists(state: EngineState): PoolSpec | null {
  const recorded = state.poolSpec;
  if (!recorded) return null;
  return state.pool !== null || Object.keys(state.things).length > 0 ? recorded : null;
}

function refuse(desired: Manifest, field: string, message: string, expected: string, code: ErrorCode = 'E_POOL_CHANGE'): UserError {
  return new UserError(`${desired.file || 'manifest'}: ${field}: ${message}`, { file: desired.file || undefined, path: field, expected }, code);
}

function describeBacking(b: Backing): string {
  return b.kind === 'file' ? `the file ${b.file}` : `the device ${b.device}`;
}

/** Throws a UserError for the first change to an existing pool or device that cannot be carried out. */
export function refuseChanges(state: EngineState, desired: Manifest): void {
  const recorded = poolExists(state);
  if (!recorded) return;
  const pool = desired.pool;
  if (pool.name !== recorded.name) {
    throw refuse(
      desired,
      'pool.name',
      `the pool in this state dir is named ${JSON.stringify(recorded.name)}; a pool cannot be renamed: ${RECREATE}`,
      JSON.stringify(recorded.name),
    );
  }
  if (pool.blockSizeBytes !== recorded.blockSizeBytes) {
    throw refuse(
      desired,
      'pool.blockSize',
      `the pool was made with ${formatSize(recorded.blockSizeBytes)} blocks and cannot change them: ${RECREATE}`,
      formatSize(recorded.blockSizeBytes),
    );
  }
  if (pool.filesystem !== recorded.filesystem) {
    throw refuse(
      desired,
      'pool.filesystem',
      `the base and every layer and device hold ${recorded.filesystem}, made when the pool was: ${RECREATE}`,
      recorded.filesystem,
    );
  }
  for (const role of ['data', 'metadata'] as const) {
    const was = recorded[role];
    const now = pool[role];
    const same = was.kind === now.kind && (was.kind === 'file' ? was.file === (now as typeof was).file : was.device === (now as typeof was).device);
    if (!same) {
      throw refuse(
        desired,
        `pool.${role}`,
        `the pool's ${role} is ${describeBacking(was)}; it cannot move to ${describeBacking(now)}: ${RECREATE}`,
        describeBacking(was),
      );
    }
    if (was.kind === 'file' && now.kind === 'file' && now.sizeBytes < was.sizeBytes) {
      throw refuse(
        desired,
        `pool.${role}.size`,
        `cannot be lowered from ${formatSize(was.sizeBytes)} to ${formatSize(now.sizeBytes)}: a pool never shrinks (raise it, or use \`thinlayer pool grow\`, to grow it; ${RECREATE.replace('or put the recorded value back', 'or put the recorded size back')})`,
        `at least ${formatSize(was.sizeBytes)}`,
        'E_POOL_SIZE',
      );
    }
  }
  for (const device of desired.devices) {
    const t = state.things[thingKey('device', device.name)];
    if (!t || device.sizeBytes === null || device.sizeBytes >= t.sizeBytes) continue;
    throw refuse(
      desired,
      `devices.${device.name}.size`,
      `cannot be lowered from ${formatSize(t.sizeBytes)} to ${formatSize(device.sizeBytes)}: its filesystem is not shrunk under its data (raise it to grow the device; to start smaller, remove the device from the manifest, apply, and add it back)`,
      `at least ${formatSize(t.sizeBytes)}`,
      'E_DEVICE_SIZE',
    );
  }
}

export interface PoolGrowth {
  dataBytes?: number;
  metadataBytes?: number;
}

/**
 * The pool's files to grow for a raised data.size or metadata.size: each file backing a pool that
 * exists and is smaller than the manifest says (a file grown further, by `pool grow` or autoextend, stays).
 * `fileBytes`: the files' sizes now, by role (null when missing).
 */
export function poolGrowth(state: EngineState, desired: Manifest, fileBytes: Record<'data' | 'metadata', number | null>): PoolGrowth | null {
  const recorded = poolExists(state);
  if (!recorded || recorded.name !== desired.pool.name) return null;
  const growth: PoolGrowth = {};
  for (const role of ['data', 'metadata'] as const) {
    const b = desired.pool[role];
    const now = fileBytes[role];
    if (b.kind !== 'file' || now === null || b.sizeBytes <= now) continue;
    if (role === 'data') growth.dataBytes = b.sizeBytes;
    else growth.metadataBytes = b.sizeBytes;
  }
  return growth.dataBytes === undefined && growth.metadataBytes === undefined ? null : growth;
}

/** The args of the pool.grow step for a growth: each file grown from its size now to the size asked for (rounded up to a sector). */
export function poolGrowArgs(
  pool: { dmName: string; uuid: string },
  spec: PoolSpec,
  growth: PoolGrowth,
  fileBytes: Record<PoolRole, number | null>,
): PoolGrowArgs {
  const args: PoolGrowArgs = { dmName: pool.dmName, uuid: pool.uuid, data: spec.data, grow: [] };
  for (const role of ['data', 'metadata'] as const) {
    const wanted = role === 'data' ? growth.dataBytes : growth.metadataBytes;
    if (wanted === undefined) continue;
    const backing = spec[role];
    if (backing.kind !== 'file') {
      throw new UserError(
        `the pool's ${role} is the block device ${backing.device}: grow that device itself; thinlayer grows only file-backed pools`,
        { path: `pool.${role}` },
        'E_POOL_GROW',
      );
    }
    const fromBytes = fileBytes[role];
    if (fromBytes === null)
      throw new UserError(`the pool's ${role} file ${backing.file} is missing: there is nothing to grow`, { path: `pool.${role}.file` }, 'E_POOL_GROW');
    const toBytes = Math.ceil(wanted / SECTOR_BYTES) * SECTOR_BYTES;
    if (toBytes < fromBytes) {
      throw new UserError(
        `the pool's ${role} file is ${formatBytes(fromBytes)}; it can grow but not shrink (asked for ${formatBytes(wanted)})`,
        { path: `pool.${role}.size`, expected: `at least ${formatSize(fromBytes)}` },
        'E_POOL_GROW',
      );
    }
    args.grow.push({ role, file: backing.file, fromBytes, toBytes });
  }
  if (args.grow.length === 0) throw new UserError('nothing to grow: give a new data or metadata size', {}, 'E_POOL_GROW');
  return args;
}

/** The pool.grow step: what `plan` shows for a growth that `apply` carries out before its steps, and what `thinlayer pool grow` logs. */
export function poolGrowStep(args: PoolGrowArgs): Step {
  const parts = args.grow.map((g) => `the ${g.role} file from ${formatSize(g.fromBytes)} to ${formatSize(g.toBytes)}`);
  return makeStep('pool.grow', 'pool', 'update', args, `grow the pool: ${parts.join(' and ')}`);
}
