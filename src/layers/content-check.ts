// A layer archive checked while it is read for its digest, before the kernel is touched: the
// structure and safety rules the extractor applies (apply.ts, safe-path.ts) that can be judged from
// the archive alone. Names that are absolute or climb with `..`, whiteouts that are not names,
// writes through a symlink the layer itself made, symlink targets that leave the root through this
// layer's own links, hardlinks to nothing or to a non-file of this layer, device nodes and fifos
// where they are not allowed, a truncated or corrupt archive, and content larger than the device.
//
// The expanded size is bounded as it is read: a decompression bomb stops at the device's size, not
// after all of it is inflated. What needs the lower layers (a symlink one of them left) is judged
// again by the extractor, which deletes the layer it could not finish.

import { createHash } from 'node:crypto';
import { CorruptStreamError, uncompressedChunks, type ArchiveFormat } from './compression.ts';
import { LayerContentError, TarFormatError } from './errors.ts';
import { PathRefusal, checkSymlinkTargetIn, entryComponents } from './safe-path.ts';
import { ByteReader, readTar } from './tar-reader.ts';
import { classifyWhiteout } from './whiteouts.ts';

export interface ContentRules {
  /** The device's size: more uncompressed bytes than this are refused, and reading stops there. */
  maxBytes?: number;
  /** Device nodes and fifos are allowed (the layer's allowDevices). */
  allowDevices?: boolean;
}

export interface CheckedArchive {
  /** `sha256:HEX` of the uncompressed tar. */
  diffId: string;
  /** `sha256:HEX` of the file as stored. */
  storedDigest: string;
  /** Bytes of the uncompressed tar. */
  expandedBytes: number;
  /** The archive holds device nodes or fifos. */
  deviceNodes: boolean;
}

export function tooLargeMessage(maxBytes: number): string {
  return `the layer is larger than the ${maxBytes} bytes its device holds`;
}

/**
 * Reads the archive at `path` once: its digests, and every rule above. Rejects with a
 * LayerContentError naming `label` and, where there is one, the entry at fault.
 */
export async function checkArchive(path: string, format: ArchiveFormat, label: string, rules: ContentRules = {}): Promise<CheckedArchive> {
  const stored = createHash('sha256');
  const checked = await checkTarStream(
    uncompressedChunks(path, format, (c) => stored.update(c)),
    label,
    rules,
  );
  return { ...checked, storedDigest: `sha256:${stored.digest('hex')}` };
}

/** The same checks over an uncompressed tar stream; the stream is not read past `rules.maxBytes`. */
export async function checkTarStream(source: AsyncIterable<Buffer>, label: string, rules: ContentRules = {}): Promise<Omit<CheckedArchive, 'storedDigest'>> {
  const uncompressed = createHash('sha256');
  const limit = rules.maxBytes === undefined ? undefined : { bytes: rules.maxBytes, message: tooLargeMessage(rules.maxBytes) };
  const reader = new ByteReader(hashed(source, uncompressed), limit);
  const tree = new LayerTree();
  let current: string | null = null;
  let deviceNodes = false;
  try {
    for await (const entry of readTar(reader)) {
      const h = entry.header;
      current = h.name;
      if (limit && entry.offset + h.size > limit.bytes) throw new TarFormatError(limit.message, h.name);
      if (h.type === 'char' || h.type === 'block' || h.type === 'fifo') {
        deviceNodes = true;
        if (rules.allowDevices !== true)
          throw new PathRefusal(`${h.type === 'fifo' ? 'a fifo' : 'a device node'} is not allowed in this layer (device nodes and fifos need allowDevices)`);
      }
      tree.add(h.name, h.type, h.linkname);
      current = null;
    }
  } catch (e) {
    throw asContentError(e, label, current);
  } finally {
    await reader.close(); // stops a decompressor still running after a refusal
  }
  return { diffId: `sha256:${uncompressed.digest('hex')}`, expandedBytes: reader.position, deviceNodes };
}

async function* hashed(source: AsyncIterable<Buffer>, hash: ReturnType<typeof createHash>): AsyncGenerator<Buffer> {
  for await (const chunk of source) {
    hash.update(chunk);
    yield chunk;
  }
}

function asContentError(e: unknown, label: string, entry: string | null): unknown {
  if (e instanceof LayerContentError) return e;
  if (e instanceof PathRefusal) return new LayerContentError(e.message, label, entry);
  if (e instanceof TarFormatError) return new LayerContentError(e.message, label, e.entry ?? entry);
  if (e instanceof CorruptStreamError) return new LayerContentError(e.message, label, null);
  return e;
}

type NodeKind = 'dir' | 'file' | 'symlink' | 'other';

/** What this layer's entries make, by path inside the root: enough to judge later entries as the extractor would. */
class LayerTree {
  private readonly nodes = new Map<string, { kind: NodeKind; target?: string }>();

  add(name: string, type: string, linkname: string): void {
    const components = entryComponents(name);
    if (components.length === 0) return; // the root itself
    const whiteout = classifyWhiteout(components[components.length - 1]);
    if (whiteout) {
      this.checkParents(components);
      if (whiteout.kind === 'remove') {
        if (whiteout.name === '' || whiteout.name === '.' || whiteout.name === '..')
          throw new PathRefusal(`a whiteout of ${JSON.stringify(whiteout.name)} is not a name`);
        this.removeTree([...components.slice(0, -1), whiteout.name].join('/'));
      }
      return;
    }
    this.checkParents(components);
    const path = components.join('/');
    if (type === 'hardlink') {
      const target = entryComponents(linkname, 'hardlink target');
      if (target.length === 0) throw new PathRefusal('the hardlink target is the layer root');
      if (target.join('/') === path) throw new PathRefusal('the hardlink names itself as its target');
      this.checkParents(target, false);
      const seen = this.nodes.get(target.join('/'));
      if (seen && seen.kind !== 'file') throw new PathRefusal(`the hardlink target ${JSON.stringify(linkname)} is not a regular file`);
    }
    if (type === 'symlink') this.checkSymlinkTarget(components.slice(0, -1), linkname);
    const kind: NodeKind = type === 'dir' ? 'dir' : type === 'file' || type === 'hardlink' ? 'file' : type === 'symlink' ? 'symlink' : 'other';
    if (!(kind === 'dir' && this.nodes.get(path)?.kind === 'dir')) this.removeTree(path);
    this.nodes.set(path, kind === 'symlink' ? { kind, target: linkname } : { kind });
  }

  /** The extractor never writes through a symlink, nor under something that is not a directory. */
  private checkParents(components: readonly string[], create = true): void {
    for (let i = 0; i < components.length - 1; i++) {
      const prefix = components.slice(0, i + 1).join('/');
      const node = this.nodes.get(prefix);
      if (node?.kind === 'symlink') throw new PathRefusal(`its parent ${prefix} is a symlink: thinlayer does not write through symlinks`);
      if (node && node.kind !== 'dir') throw new PathRefusal(`its parent ${prefix} is not a directory`);
      if (!node && create) this.nodes.set(prefix, { kind: 'dir' });
    }
  }

  private removeTree(path: string): void {
    this.nodes.delete(path);
    const below = `${path}/`;
    for (const p of this.nodes.keys()) if (p.startsWith(below)) this.nodes.delete(p);
  }

  /** As safe-path.ts checkSymlinkTarget, following this layer's own symlinks. */
  private checkSymlinkTarget(entryDir: readonly string[], target: string): void {
    checkSymlinkTargetIn(entryDir, target, (here) => {
      const node = this.nodes.get(here.join('/'));
      return node?.kind === 'symlink' ? node.target! : null;
    });
  }
}
