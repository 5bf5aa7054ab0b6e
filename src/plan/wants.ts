// What should exist, as a list of thin devices in creation order: the base, the layers parents
// first (keyed by chain id), then the writable devices. Pure.

import type { Manifest, DesiredDeviceState, MountOption } from '../model/manifest.ts';
import type { StableState } from '../model/lifecycle-state.ts';
import { thingKey } from '../domain/names.ts';
import type { ThingKind } from '../model/thing-kind.ts';
import { chainHex } from './layer-chain.ts';
import type { LayerContent, LayerUnit } from '../model/layer-content.ts';

export type PlanMode =
  /** Bring everything to the desired state. */
  | 'converge'
  /** Unmount and deactivate everything, keep all data (`thinlayer down`). */
  | 'down';

export const RANK: Record<StableState, number> = { absent: 0, created: 1, activated: 2, mounted: 3 };

export interface Want {
  key: string;
  kind: ThingKind;
  name: string;
  origin: string | null; // key
  state: StableState;
  sizeBytes: number;
  mountpoint: string | null;
  /** Devices: what their mount may honour (nosuid, nodev otherwise). */
  mountOptions?: MountOption[];
  /** Layers: what to extract into the snapshot (null content: an empty layer). */
  unit: LayerUnit | null;
  /** For people: the manifest's name for it. */
  label: string;
  /** Devices: the manifest layer it must be a snapshot of (whose top is `origin`). */
  layer?: string;
}

/** The desired thin devices in creation order: the base, layers parents-first, then devices. */
export function wants(desired: Manifest, mode: PlanMode, content: LayerContent): Want[] {
  const base = desired.pool.baseSizeBytes;
  const layerKey = (id: string) => thingKey('layer', chainHex(id));
  const out: Want[] = [
    { key: 'base', kind: 'base', name: 'base', origin: null, state: 'created', sizeBytes: base, mountpoint: null, unit: null, label: 'base' },
  ];
  // A layer mounted for inspection is the top of a manifest layer that names a mountpoint.
  const inspectAt = new Map<string, string>();
  for (const layer of desired.layers)
    if (layer.mountpoint && content.top[layer.name] && !inspectAt.has(content.top[layer.name])) inspectAt.set(content.top[layer.name], layer.mountpoint);
  for (const unit of content.units) {
    const mountpoint = inspectAt.get(unit.chainId) ?? null;
    out.push({
      key: layerKey(unit.chainId),
      kind: 'layer',
      name: chainHex(unit.chainId),
      origin: unit.parentChainId ? layerKey(unit.parentChainId) : 'base',
      state: mountpoint && mode !== 'down' ? 'mounted' : 'created',
      sizeBytes: base,
      mountpoint,
      unit,
      label: unit.label,
    });
  }
  for (const device of desired.devices) {
    const target: DesiredDeviceState = device.state;
    const state: StableState = mode === 'down' && RANK[target] > RANK.created ? 'created' : target;
    out.push({
      key: thingKey('device', device.name),
      kind: 'device',
      name: device.name,
      origin: layerKey(content.top[device.layer]),
      state,
      sizeBytes: device.sizeBytes ?? base,
      mountpoint: device.mountpoint,
      ...(device.mountOptions?.length ? { mountOptions: device.mountOptions } : {}),
      unit: null,
      label: device.name,
      layer: device.layer,
    });
  }
  return out;
}
