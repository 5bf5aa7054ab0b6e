// Paths inside the layer root, resolved without ever following a symlink. Every entry name is split
// into components and each directory on the way is checked with lstat: a symlink there (made by an
// earlier entry or an earlier layer) is refused rather than followed, so nothing a layer holds can
// redirect a later write outside the root. Symlink targets are judged as a container reads them.
// The calls are synchronous on purpose: see apply.ts.

import { lstatSync, mkdirSync, readlinkSync, type Stats } from 'node:fs';
import { join } from 'node:path';

/** Why a path is refused; the extractor turns it into a LayerContentError naming the entry. */
export class PathRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PathRefusal';
  }
}

/** The components of an entry name: `./a//b/` is ['a', 'b'], `.` and `./` are [] (the root itself). */
export function entryComponents(name: string, what = 'name'): string[] {
  if (name === '') throw new PathRefusal(`the ${what} is empty`);
  if (name.startsWith('/')) throw new PathRefusal(`the ${what} is absolute: layer entries are relative to the layer root`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) throw new PathRefusal(`the ${what} contains "..": it could reach outside the layer root`);
  return parts;
}

export function pathInRoot(root: string, components: readonly string[]): string {
  return components.length === 0 ? root : join(root, ...components);
}

function errorCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

/** lstat, or null when nothing is there. */
export function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (e) {
    if (errorCode(e) === 'ENOENT' || errorCode(e) === 'ENOTDIR') return null;
    throw e;
  }
}

/**
 * Makes sure every directory above the entry is a real directory inside the root, creating missing
 * ones (mode 0755, owned by root, as other layer tools do), and returns the entry's absolute path.
 * With `create: false`, returns null instead of creating (a whiteout of something not there).
 */
export function resolveEntryPath(root: string, components: readonly string[], opts: { create: boolean; known?: KnownDirectories }): string | null {
  let dir = root;
  for (let i = 0; i < components.length - 1; i++) {
    const next = join(dir, components[i]);
    if (opts.known?.has(next)) {
      dir = next;
      continue;
    }
    const st = lstatOrNull(next);
    if (st === null) {
      if (!opts.create) return null;
      mkdirSync(next, { mode: 0o755 });
    } else if (st.isSymbolicLink()) {
      throw new PathRefusal(`its parent ${components.slice(0, i + 1).join('/')} is a symlink: thinlayer does not write through symlinks`);
    } else if (!st.isDirectory()) {
      throw new PathRefusal(`its parent ${components.slice(0, i + 1).join('/')} is not a directory`);
    }
    opts.known?.add(next);
    dir = next;
  }
  return pathInRoot(root, components);
}

/**
 * Directories already checked (or made) during one apply, so that deep trees are not lstat'ed
 * component by component for every entry. Whatever removes a path forgets it and all below it:
 * a directory replaced by a symlink is checked afresh.
 */
export class KnownDirectories {
  private readonly paths = new Set<string>();
  has(path: string): boolean {
    return this.paths.has(path);
  }
  add(path: string): void {
    this.paths.add(path);
  }
  forgetTree(path: string): void {
    this.paths.delete(path);
    const below = `${path}/`;
    for (const known of this.paths) if (known.startsWith(below)) this.paths.delete(known);
  }
}

/** More symlinks than this on the way to a target is a loop (the kernel's own limit is 40). */
const MAX_SYMLINK_HOPS = 40;

/**
 * Refuses a symlink target that climbs above the root, resolved as a container resolves it: from the
 * entry's directory, absolute targets from the root, following the symlinks already inside the root
 * (so `a -> ../..` cannot be reached through `b -> a/x`), and components not there yet read as plain
 * names. A container's root clamps `..` at `/`, so such a target is harmless inside a container but
 * aims at the host wherever the layer is mounted: it is taken as hostile.
 */
export function checkSymlinkTarget(root: string, entryDir: readonly string[], target: string): void {
  checkSymlinkTargetIn(entryDir, target, (here) => {
    const path = pathInRoot(root, here);
    return lstatOrNull(path)?.isSymbolicLink() ? readlinkSync(path) : null;
  });
}

/**
 * The walk of checkSymlinkTarget over any tree: `linkAt(components)` answers the target of the
 * symlink at those components, or null where there is none. The extractor asks the disk; the check
 * made while a source is hashed (content-check.ts) asks the archive's own entries.
 */
export function checkSymlinkTargetIn(entryDir: readonly string[], target: string, linkAt: (components: string[]) => string | null): void {
  if (target === '') throw new PathRefusal('the symlink target is empty');
  if (target.includes('\0')) throw new PathRefusal('the symlink target contains a NUL byte');
  let hops = 0;
  const walk = (from: readonly string[], link: string): string[] => {
    const at = link.startsWith('/') ? [] : [...from];
    for (const part of link.split('/')) {
      if (part === '' || part === '.') continue;
      if (part === '..') {
        if (at.length === 0) throw new PathRefusal(`the symlink target ${JSON.stringify(target)} leads outside the layer root`);
        at.pop();
        continue;
      }
      const next = linkAt([...at, part]);
      if (next !== null) {
        if (++hops > MAX_SYMLINK_HOPS)
          throw new PathRefusal(`the symlink target ${JSON.stringify(target)} goes through more than ${MAX_SYMLINK_HOPS} symlinks`);
        at.splice(0, at.length, ...walk(at, next));
      } else {
        at.push(part);
      }
    }
    return at;
  };
  walk(entryDir, target);
}

/** The existing regular file a hardlink entry names, checked component by component like any entry. */
export function hardlinkTarget(root: string, linkname: string): { path: string; components: string[] } {
  const components = entryComponents(linkname, 'hardlink target');
  if (components.length === 0) throw new PathRefusal('the hardlink target is the layer root');
  const path = resolveEntryPath(root, components, { create: false });
  const st = path === null ? null : lstatOrNull(path);
  if (path === null || st === null)
    throw new PathRefusal(`the hardlink target ${JSON.stringify(linkname)} does not exist: it must be a regular file extracted before it`);
  if (!st.isFile()) throw new PathRefusal(`the hardlink target ${JSON.stringify(linkname)} is not a regular file`);
  return { path, components };
}
