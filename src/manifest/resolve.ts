// From the plain YAML value to the Manifest the engine uses: defaults filled, sizes in bytes,
// paths normalised, layers parents first; and every problem of meaning found on the way (sizes
// out of the kernel's bounds, names device-mapper cannot take, references to nothing, cycles,
// overlapping mountpoints). Type and key problems are the schema's (schema.ts): here a value of
// the wrong type is skipped quietly, so that each mistake is reported once.

import { dirname, isAbsolute, join } from 'node:path';
import type { Filesystem, Backing, DesiredDeviceState, DeviceSpec, LayerSpec, Manifest, MountOption, SnapshotterSpec } from '../model/manifest.ts';
import { validateDmName, validatePoolName } from './dm-names.ts';
import { dmIdentity } from '../domain/names.ts';
import { MANIFEST_DEFAULTS } from './defaults.ts';
import { describeCycle, findCycles, parentsFirst } from './layer-order.ts';
import * as limits from './limits.ts';
import { describeValue, formatPath, type DocPath, type ManifestProblem } from './manifest-error.ts';
import { isWithin, readBackingDevice, readBackingFile, readMountpoint } from './paths.ts';
import { formatSize, readSize, SIZE_EXPECTED } from './sizes.ts';
import { SECTOR_BYTES } from '../model/units.ts';

export interface Resolution {
  /** Null when the problems leave nothing sound to build. */
  manifest: Manifest | null;
  problems: ManifestProblem[];
}

type Mapping = Record<string, unknown>;
const isMapping = (v: unknown): v is Mapping => v !== null && typeof v === 'object' && !Array.isArray(v);
const field = (v: unknown, key: string): unknown => (isMapping(v) && Object.hasOwn(v, key) ? v[key] : undefined);
const entries = (v: unknown): [string, unknown][] => (isMapping(v) ? Object.entries(v) : []);

const DEVICE_STATES: readonly DesiredDeviceState[] = ['created', 'activated', 'mounted'];

/** `file` places layer sources: a relative source is relative to the manifest's directory. */
export function resolveManifest(value: unknown, file: string): Resolution {
  const problems: ManifestProblem[] = [];
  const report = (path: DocPath, expected: string, got?: string) => problems.push({ path, expected, ...(got === undefined ? {} : { got }) });

  /** Bytes of a size value; undefined (reported) when it is not one, undefined (quietly) when of the wrong type. */
  function size(path: DocPath, raw: unknown): number | undefined {
    if (typeof raw !== 'string' && typeof raw !== 'number') return undefined;
    const reading = readSize(raw);
    if (!reading.ok) {
      const generic = reading.reason === `not ${SIZE_EXPECTED}`;
      report(path, SIZE_EXPECTED, generic ? describeValue(raw) : `${describeValue(raw)} (${reading.reason})`);
      return undefined;
    }
    if (reading.bytes === 0) {
      report(path, 'a size above zero', describeValue(raw));
      return undefined;
    }
    return reading.bytes;
  }

  /** `size`, then `fits`; reports `expected` when it does not fit. */
  function boundedSize(path: DocPath, raw: unknown, fits: (bytes: number) => boolean, expected: string): number | undefined {
    const bytes = size(path, raw);
    if (bytes === undefined) return undefined;
    if (!fits(bytes)) {
      report(path, expected, describeValue(raw));
      return undefined;
    }
    return bytes;
  }

  function checkName(path: DocPath, name: string, what: string, validate: (n: string) => string | null): void {
    const why = validate(name);
    if (why) report(path, what, `${describeValue(name)} (${why})`);
  }

  // --- pool ----------------------------------------------------------------------------------
  const rawPool = field(value, 'pool');
  const poolName = field(rawPool, 'name');
  if (typeof poolName === 'string') checkName(['pool', 'name'], poolName, 'a pool name usable in device-mapper names', validatePoolName);

  const rawFilesystem = field(rawPool, 'filesystem');
  const filesystem: Filesystem = rawFilesystem === 'xfs' ? 'xfs' : MANIFEST_DEFAULTS.filesystem;

  const rawBlockSize = field(rawPool, 'blockSize');
  const blockSize =
    rawBlockSize === undefined
      ? MANIFEST_DEFAULTS.blockSizeBytes
      : boundedSize(
          ['pool', 'blockSize'],
          rawBlockSize,
          (b) => b % limits.BLOCK_SIZE_STEP_BYTES === 0 && b >= limits.MIN_BLOCK_SIZE_BYTES && b <= limits.MAX_BLOCK_SIZE_BYTES,
          `a multiple of ${formatSize(limits.BLOCK_SIZE_STEP_BYTES)} from ${formatSize(limits.MIN_BLOCK_SIZE_BYTES)} to ${formatSize(limits.MAX_BLOCK_SIZE_BYTES)}`,
        );

  const rawBaseSize = field(rawPool, 'baseSize');
  let baseSize =
    rawBaseSize === undefined ? MANIFEST_DEFAULTS.baseSizeBytes : sectorSize(['pool', 'baseSize'], rawBaseSize, limits.MIN_BASE_SIZE_BYTES, 'the base');
  if (baseSize !== undefined && filesystem === 'xfs' && baseSize < limits.MIN_XFS_BASE_SIZE_BYTES) {
    report(
      ['pool', 'baseSize'],
      `at least ${formatSize(limits.MIN_XFS_BASE_SIZE_BYTES)} with filesystem xfs (mkfs.xfs refuses smaller)`,
      describeValue(rawBaseSize ?? formatSize(baseSize)),
    );
    baseSize = undefined;
  }

  /** A size of at least `min`, in whole sectors (device-mapper tables count sectors). */
  function sectorSize(path: DocPath, raw: unknown, min: number, what: string): number | undefined {
    const bytes = size(path, raw);
    if (bytes === undefined) return undefined;
    if (bytes < min) report(path, `at least ${formatSize(min)} for ${what}`, describeValue(raw));
    else if (bytes % SECTOR_BYTES !== 0) report(path, `a whole number of ${SECTOR_BYTES}-byte sectors`, describeValue(raw));
    else return bytes;
    return undefined;
  }

  function backing(which: 'data' | 'metadata', fits: (bytes: number) => boolean, fitsText: string): Backing | undefined {
    const path = ['pool', which];
    const raw = field(rawPool, which);
    const fallback = MANIFEST_DEFAULTS[which];
    if (raw === undefined) return { kind: 'file', file: fallback.file, sizeBytes: fallback.sizeBytes };
    if (!isMapping(raw)) return undefined;
    const { file, device, size: rawSize } = raw;
    if (device !== undefined) {
      if (file !== undefined) report([...path, 'device'], 'either file or device, not both', describeValue(device));
      if (rawSize !== undefined) report([...path, 'size'], 'no size beside device (a device has its own size)', describeValue(rawSize));
      if (typeof device !== 'string' || file !== undefined) return undefined;
      const reading = readBackingDevice(device);
      if (!reading.ok) return void report([...path, 'device'], reading.expected, describeValue(device));
      return { kind: 'device', device: reading.path };
    }
    let fileName: string | undefined = fallback.file;
    if (file !== undefined) {
      const reading = typeof file === 'string' ? readBackingFile(file) : undefined;
      if (reading && !reading.ok) report([...path, 'file'], reading.expected, describeValue(file));
      fileName = reading?.ok ? reading.path : undefined;
    }
    const sizeBytes = rawSize === undefined ? fallback.sizeBytes : boundedSize([...path, 'size'], rawSize, fits, fitsText);
    if (sizeBytes === undefined || fileName === undefined) return undefined;
    return { kind: 'file', file: fileName, sizeBytes };
  }

  const minData = (blockSize ?? limits.MIN_BLOCK_SIZE_BYTES) * limits.MIN_DATA_BLOCKS;
  const data = backing(
    'data',
    (b) => b >= minData,
    `at least ${limits.MIN_DATA_BLOCKS} blocks of ${formatSize(blockSize ?? limits.MIN_BLOCK_SIZE_BYTES)} (${formatSize(minData)})`,
  );
  const metadata = backing(
    'metadata',
    (b) => b >= limits.MIN_METADATA_BYTES && b <= limits.MAX_METADATA_BYTES,
    `a size from ${formatSize(limits.MIN_METADATA_BYTES)} to ${formatSize(limits.MAX_METADATA_BYTES)} (the kernel's thin-pool metadata limits)`,
  );
  if (data?.kind === 'file' && metadata?.kind === 'file' && data.file === metadata.file) {
    report(['pool', 'metadata', 'file'], 'a file other than the data file', describeValue(metadata.file));
  }
  if (data?.kind === 'device' && metadata?.kind === 'device' && data.device === metadata.device) {
    report(['pool', 'metadata', 'device'], 'a device other than the data device', describeValue(metadata.device));
  }

  const rawMinFree = field(rawPool, 'minFree');
  let minFree: number | undefined = MANIFEST_DEFAULTS.minFreeFraction;
  if (typeof rawMinFree === 'string') {
    const percent = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(rawMinFree);
    minFree = percent && Number(percent[1]) < 100 ? Number(percent[1]) / 100 : undefined;
    if (minFree === undefined) report(['pool', 'minFree'], 'a percentage from 0% to below 100%, such as 10%', describeValue(rawMinFree));
  }

  const rawTimeout = field(rawPool, 'noSpaceTimeout');
  let noSpaceTimeout: number | undefined = MANIFEST_DEFAULTS.noSpaceTimeoutSeconds;
  if (rawTimeout !== undefined) {
    const m = typeof rawTimeout === 'string' ? /^\s*(\d+)\s*(s|m)?\s*$/.exec(rawTimeout) : null;
    const seconds = typeof rawTimeout === 'number' && Number.isInteger(rawTimeout) ? rawTimeout : m ? Number(m[1]) * (m[2] === 'm' ? 60 : 1) : NaN;
    noSpaceTimeout = seconds >= 1 && seconds <= 3600 ? seconds : undefined;
    if (noSpaceTimeout === undefined) report(['pool', 'noSpaceTimeout'], 'a duration from 1s to 60m, such as 60s', describeValue(rawTimeout));
  }

  // --- snapshotter ---------------------------------------------------------------------------
  const rawSnapshotter = field(value, 'snapshotter');
  const rawWritable = field(rawSnapshotter, 'writableSize');
  let snapshotter: SnapshotterSpec | undefined;
  if (rawWritable !== undefined) {
    const bytes = sectorSize(['snapshotter', 'writableSize'], rawWritable, limits.MIN_BASE_SIZE_BYTES, 'a writable snapshot');
    // Below the base it would never apply: every snapshot is at least the base's size.
    if (bytes !== undefined && baseSize !== undefined && bytes < baseSize)
      report(
        ['snapshotter', 'writableSize'],
        `at least the base size, ${formatSize(baseSize)}: a snapshot cannot be smaller than the base it snapshots`,
        describeValue(rawWritable),
      );
    else if (bytes !== undefined) snapshotter = { writableSizeBytes: bytes };
  } else if (isMapping(rawSnapshotter)) snapshotter = { writableSizeBytes: null };

  // --- layers --------------------------------------------------------------------------------
  const layers: LayerSpec[] = [];
  for (const [name, raw] of entries(field(value, 'layers'))) {
    checkName(['layers', name], name, 'a layer name usable as a device-mapper name', validateDmName);
    const parent = field(raw, 'parent');
    const layer: LayerSpec = { name, parent: typeof parent === 'string' ? parent : null };
    const source = field(raw, 'source');
    if (source === '') report(['layers', name, 'source'], 'a path (relative to the manifest)', describeValue(source));
    // An OCI reference (oci:PATH:TAG) is resolved against the manifest's directory by the layers module.
    else if (typeof source === 'string') layer.source = isAbsolute(source) || source.startsWith('oci:') ? source : join(dirname(file), source);
    if (field(raw, 'allowDevices') === true) layer.allowDevices = true;
    const layerMount = field(raw, 'mountpoint');
    if (typeof layerMount === 'string') {
      const reading = readMountpoint(layerMount);
      if (reading.ok) layer.mountpoint = reading.path;
      else report(['layers', name, 'mountpoint'], reading.expected, describeValue(layerMount));
    }
    layers.push(layer);
  }
  const layerNames = new Set(layers.map((l) => l.name));
  const layerList = layers.length === 0 ? 'the manifest has none' : listNames([...layerNames]);
  for (const layer of layers) {
    if (layer.parent !== null && !layerNames.has(layer.parent)) {
      report(['layers', layer.name, 'parent'], `the name of another layer (${layerList})`, describeValue(layer.parent));
    }
  }
  for (const cycle of findCycles(layers)) {
    report(['layers', cycle[0], 'parent'], 'a chain of parents that ends at the base', `a cycle: ${describeCycle(cycle)}`);
  }

  // --- devices -------------------------------------------------------------------------------
  const devices: DeviceSpec[] = [];
  for (const [name, raw] of entries(field(value, 'devices'))) {
    const path = ['devices', name];
    checkName(path, name, 'a device name usable as a device-mapper name', validateDmName);
    if (layerNames.has(name)) {
      report(path, 'a name no layer has (layers and devices share the device-mapper namespace)', `${describeValue(name)}, also a layer`);
    }
    if (!isMapping(raw)) continue;

    const layer = raw.layer;
    if (typeof layer === 'string' && !layerNames.has(layer)) report([...path, 'layer'], `the name of a layer (${layerList})`, describeValue(layer));

    let mountpoint: string | null = null;
    if (typeof raw.mountpoint === 'string') {
      const reading = readMountpoint(raw.mountpoint);
      if (reading.ok) mountpoint = reading.path;
      else report([...path, 'mountpoint'], reading.expected, describeValue(raw.mountpoint));
    }
    const state: DesiredDeviceState = DEVICE_STATES.find((s) => s === raw.state) ?? (raw.mountpoint === undefined ? 'activated' : 'mounted');
    if (raw.state === 'mounted' && raw.mountpoint === undefined) {
      report([...path, 'mountpoint'], 'a mountpoint, since the state is mounted', 'nothing');
    }

    let sizeBytes: number | null = null;
    if (raw.size !== undefined) {
      const bytes = sectorSize([...path, 'size'], raw.size, limits.MIN_BASE_SIZE_BYTES, 'a device');
      if (bytes !== undefined && baseSize !== undefined && bytes < baseSize) {
        report(
          [...path, 'size'],
          `at least the base size, ${formatSize(baseSize)}: a device cannot be smaller than the base it snapshots`,
          describeValue(raw.size),
        );
      } else if (bytes !== undefined) {
        sizeBytes = bytes;
      }
    }
    const device: DeviceSpec = { name, layer: typeof layer === 'string' ? layer : '', state, mountpoint, sizeBytes };
    if (Array.isArray(raw.mountOptions) && raw.mountOptions.length > 0) {
      device.mountOptions = [...new Set(raw.mountOptions.filter((o): o is MountOption => o === 'suid' || o === 'dev'))].sort();
    }
    devices.push(device);
  }
  if (typeof poolName === 'string' && validatePoolName(poolName) === null) checkDmNamesApart(poolName, layers, devices, report);
  checkMountpointsApart(
    [
      ...devices.map((d) => ({ section: 'devices' as const, name: d.name, mountpoint: d.mountpoint })),
      ...layers.map((l) => ({ section: 'layers' as const, name: l.name, mountpoint: l.mountpoint ?? null })),
    ],
    report,
  );

  if (
    problems.length > 0 ||
    typeof poolName !== 'string' ||
    !data ||
    !metadata ||
    blockSize === undefined ||
    baseSize === undefined ||
    minFree === undefined ||
    noSpaceTimeout === undefined
  ) {
    return { manifest: null, problems };
  }
  return {
    manifest: {
      file,
      version: 1,
      pool: {
        name: poolName,
        data,
        metadata,
        blockSizeBytes: blockSize,
        baseSizeBytes: baseSize,
        filesystem,
        minFreeFraction: minFree,
        noSpaceTimeoutSeconds: noSpaceTimeout,
      },
      ...(snapshotter ? { snapshotter } : {}),
      layers: parentsFirst(layers),
      devices,
    },
    problems,
  };
}

/**
 * Names longer than device-mapper takes are shortened with a digest of the whole (domain/names.ts),
 * and a name can be written to look like another's shortened form: two entries whose dm names are
 * equal would be one device to the kernel. Refused here, naming both, before anything is made.
 */
function checkDmNamesApart(pool: string, layers: LayerSpec[], devices: DeviceSpec[], report: (path: DocPath, expected: string, got?: string) => void): void {
  const taken = new Map<string, { section: string; name: string }>();
  for (const [section, kind, names] of [
    ['layers', 'layer', layers.map((l) => l.name)],
    ['devices', 'device', devices.map((d) => d.name)],
  ] as const) {
    for (const name of names) {
      if (validateDmName(name) !== null) continue;
      const { dmName } = dmIdentity(pool, kind, name);
      const other = taken.get(dmName);
      if (other) {
        report(
          [section, name],
          'a name whose device-mapper name no other entry has',
          `${describeValue(name)}, whose shortened device-mapper name ${dmName} is also that of ${formatPath([other.section, other.name])}`,
        );
      } else taken.set(dmName, { section, name });
    }
  }
}

/** Two devices (or layers) cannot share a mountpoint, and one mounted inside another would hide or pin it. */
function checkMountpointsApart(
  mounts: Array<{ section: 'devices' | 'layers'; name: string; mountpoint: string | null }>,
  report: (path: DocPath, expected: string, got?: string) => void,
): void {
  type Seen = { section: string; name: string; mountpoint: string };
  // Indexed by path, so that each mountpoint is checked against its own ancestors rather than
  // against every other one: a manifest of 10,000 mounted devices is checked in linear time.
  const at = new Map<string, Seen>(); // the first entry mounted at each path
  const below = new Map<string, Seen>(); // the first entry mounted somewhere below each path
  for (const entry of mounts) {
    const mine = entry.mountpoint;
    if (mine === null) continue;
    const above = ancestorsOf(mine);
    const other = at.get(mine) ?? above.map((a) => at.get(a)).find((s) => s !== undefined) ?? below.get(mine);
    if (other) {
      const whose = formatPath([other.section, other.name]);
      const relation =
        mine === other.mountpoint ? 'also the mountpoint of' : isWithin(mine, other.mountpoint) ? 'inside the mountpoint of' : 'containing the mountpoint of';
      report(
        [entry.section, entry.name, 'mountpoint'],
        "a mountpoint apart from every other device's",
        `${describeValue(mine)}, ${relation} ${whose} (${other.mountpoint})`,
      );
    }
    const seen = { section: entry.section, name: entry.name, mountpoint: mine };
    if (!at.has(mine)) at.set(mine, seen);
    for (const a of above) if (!below.has(a)) below.set(a, seen);
  }
}

/** The proper ancestors of an absolute path that isWithin knows: /a/b/c gives /a/b and /a. */
function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) out.push(path.slice(0, i));
  return out;
}

function listNames(names: string[]): string {
  const shown = names.slice(0, 8).join(', ');
  return names.length > 8 ? `${shown}, ... ${names.length - 8} more` : shown;
}
