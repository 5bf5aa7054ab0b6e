// Archives as uncompressed byte streams. The format is told by the file's first bytes, never by its
// name: a plain tar, gzip (node's zlib) or zstd (the `zstd` program: node 20 has no zstd in zlib).
// Every stream is closed when its consumer stops, early or not, so no process or handle is left.

import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { systemTool } from '../host/system-tools.ts';
import { BLOCK, hasValidChecksum, isZeroBlock } from './tar-format.ts';
import { LayerContentError } from './errors.ts';

export type ArchiveFormat = 'tar' | 'gzip' | 'zstd';

export type Sniffed = { format: ArchiveFormat } | { unsupported: string };

const READ_CHUNK = 256 * 1024;

/**
 * A layer file opened for reading, refused unless it is a regular file. O_NONBLOCK: a source swapped
 * for a fifo after it was hashed must not block the open (and with it a run holding the lock); the
 * fstat then judges the file that was opened, not whatever the name points at by now.
 */
export async function openRegularFile(path: string): Promise<FileHandle> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = await handle.stat();
    if (!st.isFile())
      throw new LayerContentError(`it is ${kindOf(st)}, not a regular file: the source changed after it was checked`, path, null, 'E_LAYER_SOURCE');
    return handle;
  } catch (e) {
    await handle.close();
    throw e;
  }
}

function kindOf(st: import('node:fs').Stats): string {
  if (st.isFIFO()) return 'a fifo';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device node';
  return 'not a regular file';
}

/** What the first bytes of a file say it is; `unsupported` names what it is when thinlayer cannot read it. */
export async function sniffArchive(path: string): Promise<Sniffed> {
  const handle = await openRegularFile(path);
  let head: Buffer;
  try {
    const buffer = Buffer.alloc(BLOCK);
    const { bytesRead } = await handle.read(buffer, 0, BLOCK, 0);
    head = buffer.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b)) return { format: 'gzip' };
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return { format: 'zstd' };
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return { unsupported: 'xz-compressed data' };
  if (starts(0x42, 0x5a, 0x68)) return { unsupported: 'bzip2-compressed data' };
  if (head.length === BLOCK) {
    if (isZeroBlock(head)) return { format: 'tar' }; // an empty archive: only the end-of-archive blocks
    if (hasValidChecksum(head)) return { format: 'tar' }; // the reader judges the rest
  }
  return { unsupported: head.length === 0 ? 'an empty file' : 'neither a tar archive nor gzip or zstd data' };
}

/** A compressed stream that cannot be read (bad gzip, failed zstd, a read error): the archive is corrupt or unreadable. */
export class CorruptStreamError extends Error {
  constructor(
    message: string,
    readonly errno?: number,
  ) {
    super(message);
    this.name = 'CorruptStreamError';
  }
}

/**
 * The uncompressed bytes of an archive. `onRead` sees every chunk of the file as stored (for
 * progress and for the digest of a compressed blob). Errors of decompression are CorruptStreamErrors.
 */
export function uncompressedChunks(path: string, format: ArchiveFormat, onRead?: (chunk: Buffer) => void): AsyncIterable<Buffer> {
  switch (format) {
    case 'tar':
      return plainChunks(path, onRead);
    case 'gzip':
      return gzipChunks(path, onRead);
    case 'zstd':
      return zstdChunks(path, onRead);
  }
}

async function* fileChunks(path: string, onRead?: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  const handle = await openRegularFile(path);
  try {
    for await (const chunk of handle.createReadStream({ highWaterMark: READ_CHUNK, autoClose: false })) {
      onRead?.(chunk as Buffer);
      yield chunk as Buffer;
    }
  } finally {
    await handle.close();
  }
}

async function* plainChunks(path: string, onRead?: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  yield* fileChunks(path, onRead);
}

async function* gzipChunks(path: string, onRead?: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  const gunzip = createGunzip({ chunkSize: READ_CHUNK });
  // pipeline destroys every stage when one fails or when the consumer stops reading gunzip.
  pipeline(fileChunks(path, onRead), gunzip, () => {});
  try {
    for await (const chunk of gunzip) yield chunk as Buffer;
  } catch (e) {
    throw new CorruptStreamError(`the gzip data is corrupt or truncated (${(e as Error).message})`);
  } finally {
    gunzip.destroy();
  }
}

async function* zstdChunks(path: string, onRead?: (chunk: Buffer) => void): AsyncGenerator<Buffer> {
  let zstd: string;
  try {
    zstd = systemTool('zstd', 'decompress');
  } catch (e) {
    throw new CorruptStreamError(`cannot run zstd to read zstd-compressed data (${(e as Error).message}); install the zstd package`);
  }
  const child = spawn(zstd, ['-d', '-c', '-q'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; error?: Error }>((resolve) => {
    child.once('error', (error) => resolve({ code: null, error }));
    child.once('close', (code) => resolve({ code }));
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr = (stderr + text).slice(-2000)));
  // EPIPE when zstd stops early on bad data: its exit status tells the story, so this error is not kept.
  pipeline(fileChunks(path, onRead), child.stdin, () => {});
  try {
    for await (const chunk of child.stdout) yield chunk as Buffer;
    const { code, error } = await exited;
    if (error) throw new CorruptStreamError(`cannot run zstd to read zstd-compressed data (${error.message}); install the zstd package`);
    if (code !== 0) throw new CorruptStreamError(`the zstd data is corrupt or truncated (zstd: ${stderr.trim().split('\n').pop() || `exit status ${code}`})`);
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    child.stdout.destroy();
    await exited;
  }
}
