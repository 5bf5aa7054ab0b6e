// How thinlayer names what it owns in the kernel, and how it knows what is its own.
//
// A state directory has a random identity (128 bits, recorded in its log when the directory is first
// used: the `state.identity` event). Every device-mapper uuid thinlayer gives carries it:
//   uuid    thinlayer-<identity>-<pool>-<kind>[-<name>]
//   dm name thinlayer-<pool>-<kind>[-<name>]
// where <pool> is the pool name with every '-' doubled, so that the first single '-' after the prefix
// ends it: pool `a-dev`'s base (`thinlayer-a--dev-base`) and pool `a`'s device `base`
// (`thinlayer-a-dev-base`) cannot share a name. Names do not carry the identity, so two state
// directories that give their pools the same name meet on the pool's dm name, and the second one
// refuses (ownership below) instead of building beside the first.
//
// Ownership is an exact uuid match with the uuid recorded in the log (src/domain/ownership.ts), never
// a prefix: the prefix only says that a device is thinlayer's, not whose.

import { createHash, randomBytes } from 'node:crypto';
import type { ThingKind } from '../model/thing-kind.ts';

export const OWNER_PREFIX = 'thinlayer-';
const DM_NAME_MAX = 127; // DM_NAME_LEN 128 with the terminating NUL
const DM_UUID_MAX = 128; // DM_UUID_LEN 129 with the terminating NUL
const IDENTITY = /^[0-9a-f]{32}$/;

/** A new state directory identity: 128 random bits, as 32 hex digits. */
export function newIdentity(): string {
  return randomBytes(16).toString('hex');
}

export function isIdentity(text: unknown): text is string {
  return typeof text === 'string' && IDENTITY.test(text);
}

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

/** The pool name as it appears in dm names: '-' doubled, so a single '-' after it always ends it. */
export function encodePoolName(pool: string): string {
  return pool.replaceAll('-', '--');
}

/**
 * The dm name and uuid of the pool or of one thin device of a pool, for the state directory whose
 * identity is given. Without an identity (a read-only look at a state dir that has none yet) the
 * uuid is the one the releases before identities gave, which is never used to create anything.
 */
export function dmIdentity(pool: string, kind: ThingKind | 'pool', name?: string, identity?: string | null): { dmName: string; uuid: string } {
  const tail = kind === 'pool' || kind === 'base' ? KIND_TAG[kind] : `${KIND_TAG[kind]}-${name}`;
  const text = `${OWNER_PREFIX}${encodePoolName(pool)}-${tail}`;
  const uuid = identity ? `${OWNER_PREFIX}${identity}-${encodePoolName(pool)}-${tail}` : legacyIdentity(pool, kind, name).uuid;
  return { dmName: fit(text, DM_NAME_MAX), uuid: fit(uuid, DM_UUID_MAX) };
}

/** The name and uuid the releases before identities gave (the same text for both, '-' not doubled). */
export function legacyIdentity(pool: string, kind: ThingKind | 'pool', name?: string): { dmName: string; uuid: string } {
  const tail = kind === 'pool' || kind === 'base' ? KIND_TAG[kind] : `${KIND_TAG[kind]}-${name}`;
  const text = `${OWNER_PREFIX}${pool}-${tail}`;
  return { dmName: fit(text, DM_NAME_MAX), uuid: fit(text, DM_UUID_MAX) };
}

/** A dm name thinlayer would give (whether or not the device is its own: the uuid says that). */
export function isOwnedDmName(name: string): boolean {
  return name.startsWith(OWNER_PREFIX);
}

/** The uuid has thinlayer's form: some state directory of thinlayer made it (which one, identityOfUuid says). */
export function isThinlayerUuid(uuid: string): boolean {
  return uuid.startsWith(OWNER_PREFIX);
}

/** The identity a uuid carries, or null (a uuid of the releases before identities, or not thinlayer's). */
export function identityOfUuid(uuid: string): string | null {
  if (!uuid.startsWith(OWNER_PREFIX)) return null;
  const id = uuid.slice(OWNER_PREFIX.length, OWNER_PREFIX.length + 32);
  return IDENTITY.test(id) && uuid.charAt(OWNER_PREFIX.length + 32) === '-' ? id : null;
}
