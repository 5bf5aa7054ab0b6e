// Pool health from the kernel's thin-pool status line: its mode (rw, ro, out_of_data_space,
// needs_check, Fail) and how full its data and metadata devices are. Pure.

import type { PoolStatus } from '../kernel/thin-pool.ts';
import type { Finding } from './finding.ts';
import { formatBytes } from '../messages/format.ts';

export interface SpaceUse {
  used: number; // blocks
  total: number;
  /** Rounded to one decimal. */
  percent: number;
  /** The size of one block in bytes; null when the log records no pool spec to say it. */
  blockBytes: number | null;
}

/** dm-thin's metadata block: always 4 KiB. */
const METADATA_BLOCK_BYTES = 4096;

/** `35 MiB of 20 GiB`, or in blocks when their size is not known. */
export function describeSpace(s: SpaceUse): string {
  if (s.blockBytes === null) return `${s.used} of ${s.total} blocks`;
  return `${formatBytes(s.used * s.blockBytes)} of ${formatBytes(s.total * s.blockBytes)}`;
}

export interface PoolHealth {
  dmName: string | null;
  /** The pool's dm device is loaded and reports a status. */
  active: boolean;
  mode: PoolStatus['mode'] | null;
  needsCheck: boolean;
  transactionId: number | null;
  data: SpaceUse | null;
  metadata: SpaceUse | null;
}

export interface PoolHealthInput {
  /** The live status, or null when the pool is not active. */
  status: PoolStatus | null;
  poolDmName: string | null;
  /** Where the pool's metadata lives (file or device), for the repair commands. */
  metadataPath: string | null;
  /** The log says the pool was formatted and something is wanted in it: it should be active. */
  expectedActive: boolean;
  /** The last run was `thinlayer down`: an inactive pool is what was asked for. */
  downOnPurpose?: boolean;
  /** The pool's data block size in bytes, to say sizes rather than blocks. */
  dataBlockBytes?: number | null;
}

/**
 * Fullness levels, highest first. dm-thin gets into trouble well before 100%: a full data device
 * stops writes (out_of_data_space), a full metadata device makes the pool read-only and may need repair.
 */
export const SPACE_LEVELS = [95, 90, 80] as const;

function use(used: number, total: number, blockBytes: number | null): SpaceUse {
  return { used, total, percent: total > 0 ? Math.round((used / total) * 1000) / 10 : 0, blockBytes };
}

export function poolHealthOf(status: PoolStatus | null, poolDmName: string | null, dataBlockBytes: number | null = null): PoolHealth {
  if (!status) return { dmName: poolDmName, active: false, mode: null, needsCheck: false, transactionId: null, data: null, metadata: null };
  const failed = status.mode === 'fail';
  return {
    dmName: poolDmName,
    active: true,
    mode: status.mode,
    needsCheck: status.needsCheck,
    transactionId: failed ? null : status.transactionId,
    data: failed ? null : use(status.dataUsed, status.dataTotal, dataBlockBytes),
    metadata: failed ? null : use(status.metadataUsed, status.metadataTotal, METADATA_BLOCK_BYTES),
  };
}

/** The offline check that clears needs_check, spelled out for this pool. */
export function checkCommand(metadataPath: string | null): string {
  const meta = metadataPath ?? 'METADATA';
  return `thinlayer down && thin_check --clear-needs-check-flag ${meta} && thinlayer up`;
}

function repairCommand(metadataPath: string | null): string {
  const meta = metadataPath ?? 'METADATA';
  if (meta.startsWith('/dev/')) {
    // Metadata on a block device: repair into a file as large as the device, then write it back.
    const repaired = '/var/tmp/thinlayer-metadata.repaired';
    return `thinlayer down && truncate -s $(blockdev --getsize64 ${meta}) ${repaired} && thin_repair -i ${meta} -o ${repaired} && thin_check ${repaired} && dd if=${repaired} of=${meta} bs=1M conv=fsync && thinlayer up`;
  }
  const repaired = `${meta}.repaired`;
  return `thinlayer down && truncate -s $(stat -c %s ${meta}) ${repaired} && thin_repair -i ${meta} -o ${repaired} && thin_check ${repaired} && mv ${repaired} ${meta} && thinlayer up`;
}

function spaceFinding(what: 'data' | 'metadata', space: SpaceUse | null): Finding | null {
  if (!space || space.total === 0) return null;
  const level = SPACE_LEVELS.find((l) => space.percent >= l);
  if (level === undefined) return null;
  const consequence =
    what === 'data'
      ? 'when it fills, writes to every device stop (out_of_data_space)'
      : 'when it fills, the pool turns read-only and its metadata may need repair';
  return {
    code: `pool.${what}-space`,
    severity: 'warning',
    subject: 'pool',
    message: `pool ${what} space is ${space.percent}% used (${describeSpace(space)}, over ${level}%): ${consequence}; free space by deleting orphans and unused layers, or devices you no longer need`,
    repair: 'thinlayer gc --yes',
  };
}

export function poolHealthFindings(input: PoolHealthInput): Finding[] {
  const { status, poolDmName, metadataPath } = input;
  const name = poolDmName ?? 'the pool';
  if (!status) {
    if (!input.expectedActive) return [];
    return input.downOnPurpose
      ? [
          {
            code: 'pool.inactive',
            severity: 'info',
            subject: 'pool',
            message: `pool ${name} is down (\`thinlayer down\`): its thin ids and devices cannot be checked`,
            repair: 'thinlayer up',
          },
        ]
      : [
          {
            code: 'pool.inactive',
            severity: 'warning',
            subject: 'pool',
            message: `pool ${name} is not active (after a reboot or a crash): its thin ids and devices cannot be checked`,
            repair: 'thinlayer up',
          },
        ];
  }
  const findings: Finding[] = [];
  switch (status.mode) {
    case 'fail':
      findings.push({
        code: 'pool.failed',
        severity: 'error',
        subject: 'pool',
        message: `pool ${name} has failed (Fail): the kernel found its metadata unusable and stopped all I/O`,
        repair: repairCommand(metadataPath),
      });
      return findings; // a failed pool reports nothing else
    case 'ro':
      findings.push({
        code: 'pool.read-only',
        severity: 'error',
        subject: 'pool',
        message: `pool ${name} is read-only: the kernel met a metadata error or ran out of metadata space; no device can be written or created`,
        repair: checkCommand(metadataPath),
      });
      break;
    case 'out_of_data_space':
      findings.push({
        code: 'pool.out-of-data-space',
        severity: 'error',
        subject: 'pool',
        message: `pool ${name} is out of data space: writes to every device are queued or failing`,
        repair: 'thinlayer gc --yes',
      });
      break;
    case 'rw':
      break;
  }
  if (status.needsCheck) {
    findings.push({
      code: 'pool.needs-check',
      severity: 'error',
      subject: 'pool',
      message: `pool ${name} has its needs_check flag set: the kernel wants its metadata checked offline before it is written again`,
      repair: checkCommand(metadataPath),
    });
  }
  const health = poolHealthOf(status, poolDmName, input.dataBlockBytes ?? null);
  for (const f of [spaceFinding('data', health.data), spaceFinding('metadata', health.metadata)]) if (f) findings.push(f);
  return findings;
}
