// One comparison of desired states, shared by reconcile, watch and the library API: two manifests
// (or two resolved contents) are the same desired state when their digests are equal. The digest
// of an object is computed once and kept with it (objects of a desired state are never changed
// after they are built), so a watcher that compares the same recorded manifest every interval, or
// a reconcile that compares on every pass, hashes it once. Pure.
//
// The comparison decides only whether a desired state is recorded again and whether recorded content
// serves; never what is planned. The planner compares what each thing is with the desired state
// (identity.ts), so a change an interrupted run left half done is planned again under the same digest.

import { createHash } from 'node:crypto';
import type { Manifest } from '../model/manifest.ts';
import type { LayerContent } from '../model/layer-content.ts';

const digests = new WeakMap<object, string>();

/** The digest of a manifest or a content (null and undefined are the same: nothing). */
export function desiredDigestOf(value: Manifest | LayerContent | null | undefined): string {
  if (value === null || value === undefined) return 'none';
  let digest = digests.get(value);
  if (digest === undefined) {
    digest = createHash('sha256').update(JSON.stringify(value)).digest('hex');
    digests.set(value, digest);
  }
  return digest;
}

/** Whether two manifests, or two contents, describe the same desired state. */
export function sameDesired<T extends Manifest | LayerContent>(a: T | null | undefined, b: T | null | undefined): boolean {
  return a === b || desiredDigestOf(a) === desiredDigestOf(b);
}
