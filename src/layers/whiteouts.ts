// OCI/Docker whiteouts: how a layer deletes what lower layers hold. `.wh.NAME` deletes NAME; a
// directory holding `.wh..wh..opq` is opaque: nothing of the lower layers shows through it, while
// the entries of the layer itself stay (they may come before or after the marker in the archive).

import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_MARKER = '.wh..wh..opq';

export type Whiteout =
  | { kind: 'opaque' }
  | { kind: 'remove'; name: string }
  /** Other `.wh..wh.` names are aufs bookkeeping (hardlink directories and the like): ignored, as Docker does. */
  | { kind: 'ignore' };

/** What an entry's base name means as a whiteout, or null when it is an ordinary name. */
export function classifyWhiteout(base: string): Whiteout | null {
  if (!base.startsWith(WHITEOUT_PREFIX)) return null;
  if (base === OPAQUE_MARKER) return { kind: 'opaque' };
  if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) return { kind: 'ignore' };
  return { kind: 'remove', name: base.slice(WHITEOUT_PREFIX.length) };
}

/** Removes a path and everything under it, without following symlinks; nothing there is fine. */
export function removeTree(path: string): void {
  rmSync(path, { recursive: true, force: true });
}

/**
 * Empties an opaque directory of lower content: every path under `dir` not written by this layer
 * (`written`) goes; directories this layer wrote are kept and emptied of lower content in turn.
 */
export function emptyOpaqueDirectory(dir: string, written: ReadonlySet<string>): void {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (!written.has(path)) removeTree(path);
    else if (entry.isDirectory()) emptyOpaqueDirectory(path, written);
  }
}
