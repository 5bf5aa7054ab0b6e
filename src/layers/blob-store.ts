// Files written whole, and the state dir's store of layer tars by digest (blobs/sha256/HEX), where
// `thinlayer commit` keeps a committed layer's content. A file is written to a private temporary
// file beside its target, synced, then renamed over it, so a reader never sees half of one; a blob
// is never rewritten (the same digest is the same bytes), and a temporary file a killed writer left
// is removed by the next writer.

import { createHash } from 'node:crypto';
import { closeSync, constants, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { processExists } from '../host/process-exists.ts';

export interface WrittenFile {
  path: string;
  /** `sha256:HEX` of the bytes written. */
  digest: string;
  bytes: number;
}

const TEMP = /^\.(.+)\.(\d+)\.tmp$/;

/** Temporary files of writers that are gone (killed between create and rename), in that directory. */
function removeDeadTemps(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = TEMP.exec(name);
    if (m && Number(m[2]) !== process.pid && !processExists(Number(m[2]))) rmSync(join(dir, name), { force: true });
  }
}

/** Writes `chunks` to a private temporary file of this process (0600) beside `path`, synced: renamed by the caller. */
function writeTemp(path: string, chunks: Iterable<Buffer>): { temp: string; digest: string; bytes: number } {
  removeDeadTemps(dirname(path));
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for (const chunk of chunks) {
      hash.update(chunk);
      for (let at = 0; at < chunk.length; ) at += writeSync(fd, chunk, at);
      bytes += chunk.length;
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw e;
  }
  closeSync(fd);
  return { temp, digest: `sha256:${hash.digest('hex')}`, bytes };
}

/** Writes `chunks` to `path` whole: a private temporary file beside it (0600), synced, renamed over it. */
export function writeWhole(path: string, chunks: Iterable<Buffer>): WrittenFile {
  const { temp, digest, bytes } = writeTemp(path, chunks);
  renameSync(temp, path);
  return { path, digest, bytes };
}

/** Where the store keeps the blob of that digest. */
export function blobPath(store: string, digest: string): string {
  return join(store, 'sha256', digest.replace(/^sha256:/, ''));
}

/**
 * Names a written temporary file by its digest. Each writer renames its own temporary file (its pid
 * in the name), never a shared one, so two writers of one store (two exports into one layout, which
 * hold no lock) cannot name each other's bytes; the same digest is the same bytes, so a rename over
 * a blob already there changes nothing.
 */
function nameByDigest(store: string, written: { temp: string; digest: string; bytes: number }): WrittenFile {
  const path = blobPath(store, written.digest);
  renameSync(written.temp, path);
  return { path, digest: written.digest, bytes: written.bytes };
}

/** Stores `chunks` under their digest in `store` (made 0700): written whole, then named by what it holds. */
export function storeBlob(store: string, chunks: Iterable<Buffer>): WrittenFile {
  const dir = join(store, 'sha256');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  return nameByDigest(store, writeTemp(join(dir, 'incoming'), chunks));
}

/** `storeBlob` for content that arrives as a stream (a layer read from its source, compressed on the way). */
export async function storeBlobStream(store: string, chunks: AsyncIterable<Buffer>): Promise<WrittenFile> {
  const dir = join(store, 'sha256');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  removeDeadTemps(dir);
  const temp = join(dir, `.incoming.${process.pid}.tmp`);
  const handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of chunks) {
      hash.update(chunk);
      await handle.write(chunk);
      bytes += chunk.length;
    }
    await handle.sync();
  } catch (e) {
    await handle.close();
    rmSync(temp, { force: true });
    throw e;
  } finally {
    await handle.close().catch(() => undefined);
  }
  return nameByDigest(store, { temp, digest: `sha256:${hash.digest('hex')}`, bytes });
}
