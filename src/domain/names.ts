// How thinlayer names what it owns in the kernel. Every device-mapper device it creates carries a uuid
// starting with OWNER_PREFIX: devices without it are someone else's and are never touched.

import { createHash } from 'node:crypto';

export const OWNER_PREFIX = 'thinlayer-';
const DM_NAME_MAX = 127; // DM_NAME_LEN 128 with the terminating NUL
const DM_UUID_MAX = 128; // DM_UUID_LEN 129 with the terminating NUL

/** `snapshot`: a containerd snapshot made by `thinlayer snapshotter` (src/snapshotter), never by the manifest. */
export type ThingKind = 'base' | 'layer' | 'device' | 'snapshot';

/** The key of a thin device in the projection: `base`, `layer:NAME` or `device:NAME`. */
export function thingKey(kind: ThingKind, name: string): string {
  return kind === 'base' ? 'base' : `${kind}:${name}`;
}
export function parseThingKey(key: string): { kind: ThingKind; name: string } {
  if (key === 'base') return { kind: 'base', name: 'base' };
  const i = key.indexOf(':');
  return { kind: key.slice(0, i) as ThingKind, name: key.slice(i + 1) };
}

function fit(text: string, max: number): string {
  if (Buffer.byteLength(text) <= max) return text;
  // Too long for the kernel: keep a readable head and make it unique with a digest of the whole.
  const digest = createHash('sha256').update(text).digest('hex').slice(0, 16);
  let head = text;
  while (Buffer.byteLength(head) > max - 17) head = head.slice(0, -1);
  return `${head}-${digest}`;
}

const KIND_TAG: Record<ThingKind | 'pool', string> = { pool: 'pool', base: 'base', layer: 'layer', device: 'dev', snapshot: 'snap' };

/** The dm name and uuid of the pool or of one thin device of a pool. */
export function dmIdentity(pool: string, kind: ThingKind | 'pool', name?: string): { dmName: string; uuid: string } {
  const tail = kind === 'pool' || kind === 'base' ? KIND_TAG[kind] : `${KIND_TAG[kind]}-${name}`;
  const text = `${OWNER_PREFIX}${pool}-${tail}`;
  return { dmName: fit(text, DM_NAME_MAX), uuid: fit(text, DM_UUID_MAX) };
}

/** A dm name thinlayer would give (whether or not the device is its own: the uuid says that). */
export function isOwnedDmName(name: string): boolean {
  return name.startsWith(OWNER_PREFIX);
}

export function isOwnedUuid(uuid: string): boolean {
  return uuid.startsWith(OWNER_PREFIX);
}
