// Pool autoextend for loop-backed pools, after lvm's thin_pool_autoextend_threshold and
// thin_pool_autoextend_percent: when data (or metadata) use reaches the threshold, the backing file
// grows by the percentage, as far as the host file system has room for it. Warnings are given as use
// crosses 80, 90 and 95%.
//
// The decisions are pure (decideGrowth, useWarnings); autoextendPool reads the pool and the host
// file system and calls growPool (src/actions/grow-pool.ts) to do the growing.

import { currentPool } from '../lifecycle/current-pool.ts';
import { stat, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Session } from '../engine/session.ts';
import { growPool, type PoolRole } from '../actions/grow-pool.ts';
import { parsePoolStatus } from '../kernel/thin-pool.ts';
import type { Reporter } from '../messages/message-port.ts';
import { SECTOR_BYTES } from '../model/units.ts';

export interface AutoextendPolicy {
  /** Use (percent) at which the pool grows; 100 switches autoextend off, as in lvm. */
  thresholdPercent: number;
  /** How much it grows each time, as a percentage of its current size. */
  growPercent: number;
}

export const DEFAULT_AUTOEXTEND: AutoextendPolicy = { thresholdPercent: 80, growPercent: 20 };
export const WARNING_LEVELS = [80, 90, 95] as const;
/** dm-thin uses at most this much metadata device (THIN_METADATA_MAX_SECTORS, just under 16 GiB). */
export const METADATA_MAX_BYTES = 255 * (1 << 14) * 8 * SECTOR_BYTES;
/** Metadata is counted in 4 KiB blocks. */
export const METADATA_BLOCK_BYTES = 4096;

export interface GrowthInput {
  usePercent: number;
  /** The backing file's size now. */
  sizeBytes: number;
  /** Bytes the (sparse) file already occupies on the host. */
  allocatedBytes: number;
  /** Free bytes on the host file system available to thinlayer (statfs bavail × bsize). */
  hostAvailableBytes: number;
  /** Growth comes in whole units (the pool's block size for data, 4 KiB for metadata). */
  unitBytes: number;
  /** A size the file must never exceed (the kernel's metadata limit). */
  maxBytes?: number;
  policy: AutoextendPolicy;
}

export type GrowthDecision =
  | { kind: 'none' }
  | { kind: 'grow'; toBytes: number; byBytes: number; limitedByHost: boolean }
  | { kind: 'blocked'; reason: string };

export function decideGrowth(input: GrowthInput): GrowthDecision {
  const { policy, unitBytes } = input;
  if (policy.thresholdPercent >= 100 || policy.growPercent <= 0) return { kind: 'none' };
  if (input.usePercent < policy.thresholdPercent) return { kind: 'none' };
  const wanted = Math.ceil((input.sizeBytes * policy.growPercent) / 100 / unitBytes) * unitBytes;
  // The file is sparse: the part of it not yet written will take host space too, as the pool fills it.
  const headroom = input.hostAvailableBytes - Math.max(0, input.sizeBytes - input.allocatedBytes);
  const byHost = Math.floor(Math.max(0, headroom) / unitBytes) * unitBytes;
  const byLimit = input.maxBytes === undefined ? Infinity : Math.floor(Math.max(0, input.maxBytes - input.sizeBytes) / unitBytes) * unitBytes;
  const by = Math.min(wanted, byHost, byLimit);
  if (by <= 0) {
    return {
      kind: 'blocked',
      reason:
        byLimit <= 0
          ? `it is at the kernel's limit of ${input.maxBytes} bytes`
          : `the host file system has ${Math.max(0, headroom)} bytes to spare beyond what the file may still claim`,
    };
  }
  return { kind: 'grow', toBytes: input.sizeBytes + by, byBytes: by, limitedByHost: by < wanted && byHost < byLimit };
}

/** The highest warning level at or below `percent`, or 0 below the first. */
export function warningLevel(percent: number): number {
  let level = 0;
  for (const l of WARNING_LEVELS) if (percent >= l) level = l;
  return level;
}

export interface UseWarning {
  role: PoolRole;
  percent: number;
  level: number;
}

/**
 * Warnings for levels newly crossed upwards since the last look. `warned` holds the level last
 * warned of per role; falling back below a level re-arms it, so a pool that fills again is warned again.
 */
export function useWarnings(warned: Record<PoolRole, number>, use: Record<PoolRole, number>): { warnings: UseWarning[]; warned: Record<PoolRole, number> } {
  const next = { ...warned };
  const warnings: UseWarning[] = [];
  for (const role of ['data', 'metadata'] as const) {
    const level = warningLevel(use[role]);
    if (level > warned[role]) warnings.push({ role, percent: use[role], level });
    next[role] = level;
  }
  return { warnings, warned: next };
}

export interface PoolUse {
  data: number;
  metadata: number;
}

/** Watches use across runs (warnings) and grows the pool when it is due. One per watcher. */
export class Autoextender {
  private warned: Record<PoolRole, number> = { data: 0, metadata: 0 };
  /** A blocked growth is said once, not at every run, until growth becomes possible again. */
  private blockedSaid: Record<PoolRole, boolean> = { data: false, metadata: false };

  constructor(
    private readonly policy: AutoextendPolicy,
    private readonly reporter: Reporter,
  ) {}

  /** Checks the pool of the session's desired state; grows it when due. Returns the use seen (null: no active pool). */
  async check(session: Session): Promise<PoolUse | null> {
    const pool = currentPool(session.state);
    if (!pool) return null;
    const { dmName, uuid, spec } = pool;
    const info = await session.kernel.info(dmName);
    // Another owner's pool of the same name is none of ours to watch or grow.
    if (!info?.liveTable || info.uuid !== uuid) return null;
    const line = (await session.kernel.status(dmName)).find((l) => l.type === 'thin-pool');
    if (!line) return null;
    const st = parsePoolStatus(line.params);
    if (st.mode === 'fail') return null;
    const use: PoolUse = { data: percentOf(st.dataUsed, st.dataTotal), metadata: percentOf(st.metadataUsed, st.metadataTotal) };

    const seen = useWarnings(this.warned, use);
    this.warned = seen.warned;
    for (const w of seen.warnings) this.reporter.notify({ code: 'pool.use-warning', role: w.role, percent: w.percent, level: w.level });

    for (const role of ['data', 'metadata'] as const) {
      const backing = spec[role];
      if (backing.kind !== 'file') continue; // a block device grows by other means (lvm, a bigger disk)
      const file = session.stateDir.path(backing.file);
      const [fileStat, fsStat] = await Promise.all([stat(file), statfs(dirname(file))]);
      const decision = decideGrowth({
        usePercent: use[role],
        sizeBytes: fileStat.size,
        allocatedBytes: fileStat.blocks * SECTOR_BYTES,
        hostAvailableBytes: Number(fsStat.bavail) * Number(fsStat.bsize),
        unitBytes: role === 'data' ? spec.blockSizeBytes : METADATA_BLOCK_BYTES,
        maxBytes: role === 'metadata' ? METADATA_MAX_BYTES : undefined,
        policy: this.policy,
      });
      if (decision.kind === 'blocked') {
        if (!this.blockedSaid[role]) this.reporter.notify({ code: 'pool.autoextend-blocked', role, percent: use[role], reason: decision.reason });
        this.blockedSaid[role] = true;
        continue;
      }
      this.blockedSaid[role] = false;
      if (decision.kind === 'grow') {
        await growPool(session, role === 'data' ? { dataBytes: decision.toBytes } : { metadataBytes: decision.toBytes }, { reporter: this.reporter });
      }
    }
    return use;
  }
}

function percentOf(used: number, total: number): number {
  return total > 0 ? Math.round((used / total) * 1000) / 10 : 0;
}
