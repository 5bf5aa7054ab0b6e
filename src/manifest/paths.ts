// The three kinds of path a manifest holds, and what makes each one safe to act on: a backing
// file is a plain name inside the state directory (nothing that climbs out of it), a backing
// device is a node under /dev, and a mountpoint is an absolute directory other than /.

import { posix } from 'node:path';

export type PathReading = { ok: true; path: string } | { ok: false; expected: string };

const CONTROL = /\p{Cc}/u;

/** A backing file: a plain file name, kept in the state directory. */
export function readBackingFile(text: string): PathReading {
  const expected = 'a plain file name in the state directory (no "/", not "." or "..")';
  if (text === '' || text === '.' || text === '..' || text.includes('/') || CONTROL.test(text)) return { ok: false, expected };
  return { ok: true, path: text };
}

/** A backing block device: an absolute path under /dev, normalised. */
export function readBackingDevice(text: string): PathReading {
  const expected = 'an absolute path under /dev, such as /dev/sdb';
  if (!text.startsWith('/dev/') || hasDotDot(text) || CONTROL.test(text)) return { ok: false, expected };
  const path = trimSlash(posix.normalize(text));
  if (path === '/dev') return { ok: false, expected };
  return { ok: true, path };
}

/** A mountpoint: absolute, no `..`, not / itself; normalised (no `.`, `//` or trailing `/`). */
export function readMountpoint(text: string): PathReading {
  if (!text.startsWith('/')) return { ok: false, expected: 'an absolute path' };
  if (hasDotDot(text)) return { ok: false, expected: 'a path without ".." segments' };
  if (CONTROL.test(text)) return { ok: false, expected: 'a path without control characters' };
  const path = trimSlash(posix.normalize(text));
  if (path === '/') return { ok: false, expected: 'a directory other than / itself' };
  return { ok: true, path };
}

/** True when `inner` is `outer` or lies below it (both normalised). */
export function isWithin(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(`${outer}/`);
}

function hasDotDot(text: string): boolean {
  return text.split('/').includes('..');
}

function trimSlash(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}
