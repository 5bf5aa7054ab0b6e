// Bounds on what a request may bring. Every label and key is kept in the log, in the projection and
// in snapshot.json for as long as its snapshot lives, and every session replays them: unbounded
// input makes every later call slower for everyone (labels of megabytes once made a small Prepare
// take seconds, and a projection too large to save). The bounds are containerd's own where it has
// one (a label's key and value together at most 4,096 bytes: containerd's labels.Validate), and
// generous beyond what containerd and its CRI plugin send (a handful of labels, keys well under a
// few hundred bytes). Beyond them: InvalidArgument, before anything is done.

import { SnapshotError } from './errors.ts';

/** A label's key plus its value, in UTF-8 bytes (containerd's labels.Validate: maxSize 4096). */
export const MAX_LABEL_BYTES = 4096;
/** Labels on one snapshot. */
export const MAX_LABELS = 256;
/** A snapshot key (or name), in UTF-8 bytes. */
export const MAX_KEY_BYTES = 4096;

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

export function checkKey(what: string, key: string): void {
  const n = bytes(key);
  if (n > MAX_KEY_BYTES) throw new SnapshotError('invalid-argument', `${what} is ${n} bytes long: at most ${MAX_KEY_BYTES} are allowed`);
}

export function checkLabels(labels: Record<string, string>): void {
  const entries = Object.entries(labels);
  if (entries.length > MAX_LABELS) throw new SnapshotError('invalid-argument', `${entries.length} labels: at most ${MAX_LABELS} are allowed on a snapshot`);
  for (const [k, v] of entries) {
    const n = bytes(k) + bytes(v);
    if (n > MAX_LABEL_BYTES) {
      throw new SnapshotError(
        'invalid-argument',
        `label ${JSON.stringify(k.length > 64 ? `${k.slice(0, 64)}…` : k)}: key and value are ${n} bytes together, at most ${MAX_LABEL_BYTES} are allowed`,
      );
    }
  }
}
