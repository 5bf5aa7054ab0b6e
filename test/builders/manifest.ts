// One builder for the manifests tests need: a manifest as typed data in the YAML's own shape (sizes
// as the user writes them, layers and devices keyed by name), turned into the text the CLI reads,
// written to a file, or read by the project's own parser into the engine's Manifest. Tests that
// check the parser itself on malformed or hostile text write their YAML by hand instead.
//
// The text keeps the order the data was built in (object keys in insertion order), so a device
// added with withDevices comes last and one replaced keeps its place, as in a hand-edited file.

import { writeFileSync } from 'node:fs';
import { parseManifest } from '../../src/manifest/load.ts';
import type { DesiredDeviceState, DeviceSpec, Filesystem, LayerSpec, Manifest, MountOption } from '../../src/model/manifest.ts';

/** A size as the manifest writes it: 512K, 64M, 2G. */
export type Size = `${number}${'K' | 'M' | 'G' | 'T'}`;

export type BackingDraft = { file?: string; size?: Size } | { device: string };

export interface PoolDraft {
  name: string;
  data?: BackingDraft;
  metadata?: BackingDraft;
  blockSize?: Size;
  baseSize?: Size;
  filesystem?: Filesystem;
  minFree?: `${number}%`;
  noSpaceTimeout?: string;
}

export type LayerDraft = Partial<Pick<LayerSpec, 'source' | 'allowDevices'>> & { parent?: string; mountpoint?: string };

export interface DeviceDraft {
  layer: DeviceSpec['layer'];
  state?: DesiredDeviceState;
  mountpoint?: string;
  size?: Size;
  mountOptions?: MountOption[];
}

export interface ManifestDraft {
  pool: PoolDraft;
  /** `thinlayer snapshotter`'s settings; absent: no `snapshotter` key. */
  snapshotter?: { writableSize?: Size };
  /** Absent: the manifest has no `layers` key; {}: an empty mapping. */
  layers?: Record<string, LayerDraft>;
  devices?: Record<string, DeviceDraft>;
}

/** A pool on sparse files small enough for the simulated kernel: 2G of data, 64M of metadata, 256M devices. */
export function simPool(name: string, over: Partial<PoolDraft> = {}): PoolDraft {
  return { name, data: { file: 'data.img', size: '2G' }, metadata: { file: 'metadata.img', size: '64M' }, baseSize: '256M', ...over };
}

/** The manifest of docs/manifest.md: pool demo, layers fedora and apache on it, web1 mounted and web2 activated. */
export function exampleManifest(): ManifestDraft {
  return {
    pool: {
      name: 'demo',
      data: { file: 'data.img', size: '20G' },
      metadata: { file: 'metadata.img', size: '1G' },
      blockSize: '64K',
      baseSize: '10G',
      filesystem: 'ext4',
      minFree: '10%',
    },
    layers: { fedora: {}, apache: { parent: 'fedora' } },
    devices: {
      web1: { layer: 'apache', state: 'mounted', mountpoint: '/run/thinlayer/web1' },
      web2: { layer: 'apache', state: 'activated' },
    },
  };
}

/** The draft with these devices added at the end (or replaced where they are). */
export function withDevices(m: ManifestDraft, devices: Record<string, DeviceDraft>): ManifestDraft {
  return { ...m, devices: { ...m.devices, ...devices } };
}

/** The draft without these devices. */
export function withoutDevices(m: ManifestDraft, ...names: string[]): ManifestDraft {
  return { ...m, devices: Object.fromEntries(Object.entries(m.devices ?? {}).filter(([name]) => !names.includes(name))) };
}

/** The draft with one of its devices changed in place. */
export function changeDevice(m: ManifestDraft, name: string, over: Partial<DeviceDraft>): ManifestDraft {
  const device = m.devices?.[name];
  if (!device) throw new Error(`the manifest draft has no device ${name}`);
  return withDevices(m, { [name]: { ...device, ...over } });
}

/** The draft with these layers added at the end (or replaced where they are). */
export function withLayers(m: ManifestDraft, layers: Record<string, LayerDraft>): ManifestDraft {
  return { ...m, layers: { ...m.layers, ...layers } };
}

/** The draft with these pool settings changed. */
export function withPool(m: ManifestDraft, over: Partial<PoolDraft>): ManifestDraft {
  return { ...m, pool: { ...m.pool, ...over } };
}

/** The manifest's YAML text: the pool as a block, each backing, layer and device as one flow mapping. */
export function manifestYaml(m: ManifestDraft): string {
  const lines = ['version: 1', 'pool:'];
  for (const [key, value] of Object.entries(m.pool)) if (value !== undefined) lines.push(`  ${key}: ${yamlValue(value)}`);
  if (m.snapshotter !== undefined) lines.push(`snapshotter: ${yamlValue(m.snapshotter)}`);
  for (const part of ['layers', 'devices'] as const) {
    const entries = m[part];
    if (entries === undefined) continue;
    const named = Object.entries(entries);
    if (named.length === 0) lines.push(`${part}: {}`);
    else lines.push(`${part}:`, ...named.map(([name, value]) => `  ${scalar(name)}: ${yamlValue(value)}`));
  }
  return `${lines.join('\n')}\n`;
}

/** Writes the manifest's text to `file` and returns the path. */
export function writeManifest(file: string, m: ManifestDraft): string {
  writeFileSync(file, manifestYaml(m));
  return file;
}

/** The manifest as the engine sees it, read from its text by the parser the CLI uses (`file` places relative sources). */
export function loadedManifest(m: ManifestDraft, file: string): Manifest {
  return parseManifest(manifestYaml(m), file);
}

function yamlValue(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(yamlValue).join(', ')}]`;
  if (value !== null && typeof value === 'object') {
    const pairs = Object.entries(value).filter(([, v]) => v !== undefined);
    return pairs.length === 0 ? '{}' : `{ ${pairs.map(([k, v]) => `${scalar(k)}: ${yamlValue(v)}`).join(', ')} }`;
  }
  return scalar(value as string | number | boolean);
}

/** Plain where YAML reads the text back as the same string (or number, boolean), double-quoted otherwise. */
function scalar(value: string | number | boolean): string {
  if (typeof value !== 'string') return String(value);
  const plain = /^[A-Za-z0-9_./+-][A-Za-z0-9_./+%-]*$/.test(value) && !/^(?:~|null|true|false|[-+]?[0-9.]+(?:e[-+]?[0-9]+)?)$/i.test(value);
  return plain ? value : JSON.stringify(value);
}
