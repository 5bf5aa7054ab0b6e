// Parsing and checking a device-mapper table the way the kernel's target constructors do
// (dm-table.c, dm-thin.c pool_ctr/thin_ctr, dm-linear.c), before any device is looked up.
// Pure: the shell checks afterwards that the devices named exist.

import type { DmTarget } from '../kernel-port.ts';
import { fail } from './sim-errno.ts';
import { DEFAULT_POOL_FEATURES, type DevT, type PoolFeatures } from './status-format.ts';

export const DM_MAJOR = 253;
export const LOOP_MAJOR = 7;
export const MIN_BLOCK_SECTORS = 128; // 64 KiB
export const MAX_BLOCK_SECTORS = 2097152; // 1 GiB
export const MAX_THIN_ID = 2 ** 24 - 1;

export interface PoolTarget {
  type: 'thin-pool';
  start: number;
  length: number;
  metadataDev: DevT;
  dataDev: DevT;
  blockSectors: number;
  lowWaterBlocks: number;
  features: PoolFeatures;
}
export interface ThinTarget {
  type: 'thin';
  start: number;
  length: number;
  poolDev: DevT;
  thinId: number;
}
export interface LinearTarget {
  type: 'linear';
  start: number;
  length: number;
  dev: DevT;
  offset: number;
}
export interface PlainTarget {
  type: 'zero' | 'error';
  start: number;
  length: number;
}
export type ParsedTarget = PoolTarget | ThinTarget | LinearTarget | PlainTarget;

/** kstrtoull/kstrtoul in base 10: digits with an optional leading '+'. */
export function parseUnsigned(text: string, what: string): number {
  if (!/^\+?\d+$/.test(text)) fail('EINVAL', `invalid ${what}: ${JSON.stringify(text)}`);
  const value = Number(text);
  if (!Number.isSafeInteger(value)) fail('EINVAL', `${what} out of range: ${text}`);
  return value;
}

/**
 * A device named in a table. The engine names devices by major:minor; /dev/loopN and /dev/dm-N
 * are accepted too. Any other path fails with ENODEV, as it does in a VM without udev, where
 * /dev/mapper/NAME nodes do not exist.
 */
export function parseDevice(arg: string): DevT {
  let m = /^(\d+):(\d+)$/.exec(arg);
  if (m) return { major: Number(m[1]), minor: Number(m[2]) };
  m = /^\/dev\/loop(\d+)$/.exec(arg);
  if (m) return { major: LOOP_MAJOR, minor: Number(m[1]) };
  m = /^\/dev\/dm-(\d+)$/.exec(arg);
  if (m) return { major: DM_MAJOR, minor: Number(m[1]) };
  fail('ENODEV', `cannot resolve device ${arg}`);
}

/** read_dev_id: a thin id is a 24-bit number. */
export function parseThinId(text: string): number {
  const id = parseUnsigned(text, 'device id');
  if (id > MAX_THIN_ID) fail('EINVAL', `device id ${text} is over 2^24-1`);
  return id;
}

function parsePoolFeatures(args: string[]): PoolFeatures {
  const features = { ...DEFAULT_POOL_FEATURES };
  if (args.length === 0) return features;
  const count = parseUnsigned(args[0], 'number of pool feature arguments');
  if (count > 4) fail('EINVAL', 'Invalid number of pool feature arguments');
  if (count > args.length - 1) fail('EINVAL', 'Insufficient feature arguments');
  for (const word of args.slice(1, 1 + count)) {
    switch (word.toLowerCase()) {
      case 'skip_block_zeroing':
        features.zeroNewBlocks = false;
        break;
      case 'ignore_discard':
        features.discardEnabled = false;
        break;
      case 'no_discard_passdown':
        features.discardPassdown = false;
        break;
      case 'read_only':
        features.readOnly = true;
        break;
      case 'error_if_no_space':
        features.errorIfNoSpace = true;
        break;
      default:
        fail('EINVAL', `Unrecognised pool feature requested: ${word}`);
    }
  }
  return features;
}

function parsePool(start: number, length: number, argv: string[]): PoolTarget {
  if (argv.length < 4) fail('EINVAL', 'thin-pool: Invalid argument count');
  if (argv[0] === argv[1]) fail('EINVAL', 'thin-pool: Error setting metadata or data device');
  const features = parsePoolFeatures(argv.slice(4));
  const metadataDev = parseDevice(argv[0]);
  const dataDev = parseDevice(argv[1]);
  const blockSectors = parseUnsigned(argv[2], 'block size');
  if (blockSectors < MIN_BLOCK_SECTORS || blockSectors > MAX_BLOCK_SECTORS || blockSectors % MIN_BLOCK_SECTORS !== 0) {
    fail('EINVAL', `thin-pool: Invalid block size ${argv[2]} (a multiple of 128 sectors, 128..2097152)`);
  }
  const lowWaterBlocks = parseUnsigned(argv[3], 'low water mark');
  return { type: 'thin-pool', start, length, metadataDev, dataDev, blockSectors, lowWaterBlocks, features };
}

function parseThin(start: number, length: number, argv: string[]): ThinTarget {
  if (argv.length !== 2 && argv.length !== 3) fail('EINVAL', 'thin: Invalid argument count');
  if (argv.length === 3) fail('EOPNOTSUPP', 'thin: external origin devices are not modelled by the simulated kernel');
  const poolDev = parseDevice(argv[0]);
  const thinId = parseThinId(argv[1]);
  return { type: 'thin', start, length, poolDev, thinId };
}

function parseTarget(t: DmTarget): ParsedTarget {
  const argv = t.params.trim() === '' ? [] : t.params.trim().split(/\s+/);
  switch (t.type) {
    case 'thin-pool':
      return parsePool(t.start, t.length, argv);
    case 'thin':
      return parseThin(t.start, t.length, argv);
    case 'linear':
      if (argv.length !== 2) fail('EINVAL', 'linear: Invalid argument count');
      return { type: 'linear', start: t.start, length: t.length, dev: parseDevice(argv[0]), offset: parseUnsigned(argv[1], 'linear offset') };
    case 'zero':
      if (argv.length !== 0) fail('EINVAL', 'zero: No arguments required');
      return { type: 'zero', start: t.start, length: t.length };
    case 'error':
      return { type: 'error', start: t.start, length: t.length };
    default:
      fail('EINVAL', `unknown target type ${t.type}`);
  }
}

/** The whole table: targets in order, adjoining from sector 0, and thin-pool alone. */
export function parseTable(table: DmTarget[]): ParsedTarget[] {
  if (table.length === 0) fail('EINVAL', 'no targets specified');
  const sorted = [...table].sort((a, b) => a.start - b.start);
  let next = 0;
  for (const t of sorted) {
    if (!Number.isSafeInteger(t.start) || !Number.isSafeInteger(t.length) || t.start < 0) fail('EINVAL', 'target start and length must be whole sectors');
    if (t.length <= 0) fail('EINVAL', 'zero-length target');
    if (t.start !== next) fail('EINVAL', `Gap in table at sector ${next}`);
    next = t.start + t.length;
  }
  if (sorted.length > 1 && sorted.some((t) => t.type === 'thin-pool')) fail('EINVAL', 'target type thin-pool must appear alone in table');
  return sorted.map(parseTarget);
}

/** Every device a table holds open (dm_get_device in the constructors). */
export function devicesHeld(targets: ParsedTarget[]): DevT[] {
  const held: DevT[] = [];
  for (const t of targets) {
    if (t.type === 'thin-pool') held.push(t.metadataDev, t.dataDev);
    else if (t.type === 'thin') held.push(t.poolDev);
    else if (t.type === 'linear') held.push(t.dev);
  }
  return held;
}

export function tableSectors(targets: ParsedTarget[]): number {
  return targets.reduce((sum, t) => Math.max(sum, t.start + t.length), 0);
}
