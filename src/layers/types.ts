// The shapes the layers module hands to the engine: the options of an apply, what an apply did, and
// the cache of archive digests. A resolved source (ResolvedLayer) is plain data the log records too,
// so it is src/model/layer-content.ts.

import type { ResolvedLayer } from '../model/layer-content.ts';

export interface ApplyOptions {
  /** Create character and block devices and fifos (refused by default). */
  allowDevices?: boolean;
  /** Refuse a layer whose uncompressed tar is larger than this (the device size). */
  maxBytes?: number;
  /** Called with (bytes of the source read, source size) at most every PROGRESS_INTERVAL_MS, and once at the end. */
  onProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
  /** The diff id the content must have; defaults to the layer's own diffId. null: do not check. */
  expectDiffId?: string | null;
}

export interface ApplyResult {
  /** Entries created other than directories: regular files, hardlinks, symlinks, device nodes, fifos. */
  files: number;
  /** Bytes of regular-file content written. */
  bytes: number;
  /** `sha256:HEX` of the uncompressed tar as it was read. */
  diffId: string;
}

/**
 * Digests of archive files already hashed, by the file's identity. Hashing reads the whole archive,
 * so without it every apply of a manifest with a large layer read that layer again.
 */
export interface ArchiveDigests {
  /** The layer hashed from this very file (same identity), or null. */
  lookup(path: string, identity: string): ResolvedLayer | null;
  remember(path: string, identity: string, layer: ResolvedLayer): void;
}
