// Files written whole, and the state dir's store of layer tars by digest (blobs/sha256/HEX), where
// `thinlayer commit` keeps a committed layer's content. A file is written to a private temporary
// file beside its target, synced, then renamed over it, so a reader never sees half of one; a blob
// is never rewritten (the same digest is the same bytes), and a temporary file a killed writer left
// is removed by the next writer.

import { createHash } from 'node:crypto';
import { closeSync, constants, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeSync, existsSync } from 'node:fs';
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

/** Writes `chunks` to `path` whole: a private temporary file beside it (0600), synced, renamed over it. */
export function writeWhole(path: string, chunks: Iterable<Buffer>): WrittenFile {
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
  renameSync(temp, path);
  return { path, digest: `sha256:${hash.digest('hex')}`, bytes };
}

/** Where the store keeps the blob of that digest. */
export function blobPath(store: string, digest: string): string {
  return join(store, 'sha256', digest.replace(/^sha256:/, ''));
}

/** Stores `chunks` under their digest in `store` (made 0700): written whole, then named by what it holds. */
export function storeBlob(store: string, chunks: Iterable<Buffer>): WrittenFile {
  const dir = join(store, 'sha256');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const incoming = writeWhole(join(dir, 'incoming'), chunks);
  const path = blobPath(store, incoming.digest);
  if (existsSync(path)) rmSync(incoming.path);
  else renameSync(incoming.path, path);
  return { ...incoming, path };
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
  const digest = `sha256:${hash.digest('hex')}`;
  const path = blobPath(store, digest);
  if (existsSync(path)) rmSync(temp);
  else renameSync(temp, path);
  return { path, digest, bytes };
}
