// Applying a layer into its mounted filesystem, in the OCI/Docker layer format: files, directories,
// symlinks, hardlinks (device nodes and fifos when allowed), with ownership, modes, mtimes and xattrs,
// and whiteouts deleting lower content. Nothing is ever written outside the root: every path is
// resolved component by component with lstat (safe-path.ts), files are opened O_NOFOLLOW|O_EXCL,
// and links are judged before they are made. Hostile or corrupt content stops the apply with a
// LayerContentError naming the entry; the caller then throws the half-made layer device away.

import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { chmod, lchown, link, lutimes, mkdir, open, realpath, symlink, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ERRNO, KernelError, ThinlayerError } from '../errors/index.ts';
import { CorruptStreamError, sniffArchive, uncompressedChunks } from './compression.ts';
import { directoryTar } from './dir-source.ts';
import { LayerContentError, TarFormatError } from './errors.ts';
import { S_IFBLK, S_IFCHR, S_IFIFO, lsetxattr, mknod } from './fs-calls.ts';
import { progressMeter } from './progress.ts';
import { PathRefusal, checkSymlinkTarget, entryComponents, hardlinkTarget, lstatOrNull, resolveEntryPath } from './safe-path.ts';
import type { TarHeader } from './tar-format.ts';
import { ByteReader, readTar, type TarEntry } from './tar-reader.ts';
import type { ApplyOptions, ApplyResult, ResolvedLayer } from './types.ts';
import { classifyWhiteout, emptyOpaqueDirectory, removeTree } from './whiteouts.ts';

const CREATE_FILE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** One apply in progress: what it wrote, and what is set once all entries are in. */
interface Extraction {
  root: string;
  allowDevices: boolean;
  whiteouts: boolean;
  /** Absolute paths this layer wrote: an opaque directory keeps them. */
  written: Set<string>;
  /** Directory times are set last, because writing inside a directory moves its mtime. */
  dirTimes: { path: string; atime: number; mtime: number }[];
  files: number;
  bytes: number;
}

export function layerLabel(layer: ResolvedLayer): string {
  return layer.label ?? layer.path;
}

/**
 * Extracts `layer` into `root` (the layer's mounted filesystem) on top of what the lower layers left
 * there. Resolves to what was written and the diff id of what was read; rejects with a
 * LayerContentError for content it refuses, or a KernelError when the filesystem fails a write.
 */
export async function applyLayer(layer: ResolvedLayer, root: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
  const label = layerLabel(layer);
  const expect = opts.expectDiffId === undefined ? layer.diffId : opts.expectDiffId;
  const progress = progressMeter(layer.sizeBytes, opts.onProgress);
  const hash = createHash('sha256');
  const state: Extraction = { root: await realpath(root), allowDevices: opts.allowDevices === true, whiteouts: layer.kind === 'tar', written: new Set(), dirTimes: [], files: 0, bytes: 0 };

  let source: AsyncIterable<Buffer>;
  if (layer.kind === 'dir') {
    source = directoryTar(layer.path, (n) => progress.advance(n));
  } else {
    const sniffed = await sniffArchive(layer.path);
    if ('unsupported' in sniffed) throw new LayerContentError(`the file is ${sniffed.unsupported}, not a tar, tar.gz or tar.zst layer`, label, null);
    source = uncompressedChunks(layer.path, sniffed.format, (chunk) => progress.advance(chunk.length));
  }
  // The limit counts bytes as the tar is parsed, so the entry that crosses it is the one named.
  const limit = opts.maxBytes === undefined ? undefined : { bytes: opts.maxBytes, message: `the layer is larger than the ${opts.maxBytes} bytes its device holds` };
  const reader = new ByteReader(digested(source, hash), limit);
  let current: string | null = null;
  try {
    for await (const entry of readTar(reader)) {
      opts.signal?.throwIfAborted();
      current = entry.header.name;
      if (limit && entry.offset + entry.header.size > limit.bytes) throw new LayerContentError(limit.message, label, current);
      await applyEntry(state, entry, opts.signal);
      current = null; // what fails between entries is the layer's fault, not the last entry's
    }
    current = null;
    for (const { path, atime, mtime } of state.dirTimes) {
      // A later entry of the layer may have replaced the directory.
      if ((await lstatOrNull(path))?.isDirectory()) await lutimes(path, atime, mtime);
    }
  } catch (e) {
    throw asLayerError(e, label, current);
  } finally {
    await reader.close(); // stops a decompressor still running after a refusal
  }
  const diffId = `sha256:${hash.digest('hex')}`;
  if (expect !== null && diffId !== expect) {
    throw new LayerContentError(`its content has diff id ${diffId}, expected ${expect}: the source changed or is not the layer it claims to be`, label, null, 'E_LAYER_DIGEST');
  }
  progress.finish();
  return { files: state.files, bytes: state.bytes, diffId };
}

/** The uncompressed stream, digested as it goes. */
async function* digested(source: AsyncIterable<Buffer>, hash: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    hash.update(chunk);
    yield chunk;
  }
}

function asLayerError(e: unknown, label: string, entry: string | null): unknown {
  if (e instanceof ThinlayerError) return e;
  if (e instanceof PathRefusal) return new LayerContentError(e.message, label, entry);
  if (e instanceof TarFormatError) return new LayerContentError(e.message, label, e.entry ?? entry);
  if (e instanceof CorruptStreamError) return new LayerContentError(e.message, label, null);
  const errno = (e as NodeJS.ErrnoException)?.errno;
  if (typeof errno === 'number') {
    const err = e as NodeJS.ErrnoException;
    return new KernelError(`layer.apply ${err.syscall ?? 'write'}`, err.path ?? label, Math.abs(errno), entry === null ? label : `${label}: entry ${JSON.stringify(entry)}`);
  }
  return e;
}

async function applyEntry(x: Extraction, entry: TarEntry, signal?: AbortSignal): Promise<void> {
  const h = entry.header;
  const components = entryComponents(h.name);
  if (components.length === 0) return; // the root itself: its mountpoint's metadata is not the layer's to change
  const base = components[components.length - 1];
  const whiteout = x.whiteouts ? classifyWhiteout(base) : null;
  if (whiteout) return applyWhiteout(x, components, whiteout);

  const path = (await resolveEntryPath(x.root, components, { create: true }))!;
  // A hardlink is judged before anything is deleted: its target could be the very path it replaces.
  const linkTarget = h.type === 'hardlink' ? await hardlinkTarget(x.root, h.linkname) : null;
  if (linkTarget?.path === path) throw new PathRefusal('the hardlink names itself as its target');
  const existing = await lstatOrNull(path);
  // A directory over a directory keeps its content (and is merged into); anything else replaces what is there.
  if (existing && !(existing.isDirectory() && h.type === 'dir')) await removeTree(path);
  switch (h.type) {
    case 'dir':
      if (!existing?.isDirectory()) await mkdir(path, { mode: 0o700 });
      await setOwnerAndMode(path, h);
      await setXattrs(path, h, false);
      x.dirTimes.push({ path, atime: h.atime ?? h.mtime, mtime: h.mtime });
      break;
    case 'file': {
      const handle = await open(path, CREATE_FILE, 0o600);
      try {
        for await (const chunk of entry.content()) {
          signal?.throwIfAborted(); // a big file is not waited out
          await writeAll(handle, chunk);
        }
        await handle.chown(h.uid, h.gid);
        await handle.chmod(h.mode);
        await setXattrs(path, h, false);
        await handle.utimes(h.atime ?? h.mtime, h.mtime);
      } finally {
        await handle.close();
      }
      x.bytes += h.size;
      x.files++;
      break;
    }
    case 'symlink':
      await checkSymlinkTarget(x.root, components.slice(0, -1), h.linkname);
      await symlink(h.linkname, path);
      await lchown(path, h.uid, h.gid);
      await setXattrs(path, h, true);
      await lutimes(path, h.atime ?? h.mtime, h.mtime);
      x.files++;
      break;
    case 'hardlink':
      await link(linkTarget!.path, path);
      x.files++;
      break;
    case 'char':
    case 'block':
    case 'fifo': {
      if (!x.allowDevices) throw new PathRefusal(`${h.type === 'fifo' ? 'a fifo' : 'a device node'} is not allowed in this layer (device nodes and fifos need allowDevices)`);
      const type = h.type === 'char' ? S_IFCHR : h.type === 'block' ? S_IFBLK : S_IFIFO;
      mknod(path, type | 0o600, h.devmajor, h.devminor);
      await setOwnerAndMode(path, h);
      await setXattrs(path, h, false);
      await lutimes(path, h.atime ?? h.mtime, h.mtime);
      x.files++;
      break;
    }
  }
  x.written.add(path);
}

async function applyWhiteout(x: Extraction, components: string[], whiteout: NonNullable<ReturnType<typeof classifyWhiteout>>): Promise<void> {
  if (whiteout.kind === 'ignore') return;
  if (whiteout.kind === 'opaque') {
    const marker = await resolveEntryPath(x.root, components, { create: true });
    const dir = dirname(marker!);
    const st = await lstatOrNull(dir);
    if (!st?.isDirectory()) throw new PathRefusal('an opaque marker outside a directory');
    await emptyOpaqueDirectory(dir, x.written);
    return;
  }
  if (whiteout.name === '' || whiteout.name === '.' || whiteout.name === '..') throw new PathRefusal(`a whiteout of ${JSON.stringify(whiteout.name)} is not a name`);
  const target = await resolveEntryPath(x.root, [...components.slice(0, -1), whiteout.name], { create: false });
  if (target !== null) await removeTree(target);
}

/** Owner before mode: chown clears setuid and setgid bits. */
async function setOwnerAndMode(path: string, h: TarHeader): Promise<void> {
  await lchown(path, h.uid, h.gid);
  await chmod(path, h.mode);
}

/** Xattrs the filesystem will not take (ENOTSUP; user.* on a symlink, EPERM) are left out, as other layer tools do. */
async function setXattrs(path: string, h: TarHeader, isSymlink: boolean): Promise<void> {
  for (const [name, value] of h.xattrs) {
    try {
      lsetxattr(path, name, value);
    } catch (e) {
      const errno = (e as NodeJS.ErrnoException).errno;
      if (errno === ERRNO.EOPNOTSUPP || (isSymlink && errno === ERRNO.EPERM)) continue;
      throw e;
    }
  }
}

async function writeAll(handle: FileHandle, chunk: Buffer): Promise<void> {
  let at = 0;
  while (at < chunk.length) at += (await handle.write(chunk, at, chunk.length - at)).bytesWritten;
}
