// The digests of layer archives, kept in the state dir (`layer-digests.json`) so that an apply does
// not read a layer archive it has hashed before (a layer of gigabytes took seconds every apply).
// Entries are keyed by the file's identity (src/layers/resolve-source.ts fileIdentity). A cache: missing,
// unreadable or of another version, it is ignored and rebuilt; it keeps only the archives the last
// manifest named. It is sealed by a checksum of its content (src/events/checksum.ts): a damaged
// digest would give a layer another chain id, and the planner would build it again and move devices
// off the old one, so a file whose checksum fails is ignored like a missing one.

import { readFile } from 'node:fs/promises';
import { writeFileWhole, type StateDir } from '../events/state-dir.ts';
import { sealDocument, unsealDocument } from '../events/checksum.ts';
import type { ArchiveDigests } from './types.ts';
import type { ResolvedLayer } from '../model/layer-content.ts';

export const ARCHIVE_DIGESTS_FILE = 'layer-digests.json';
// 2: entries carry what the content checks counted (expandedBytes, deviceNodes).
const VERSION = 2;

interface Entry {
  identity: string;
  layer: ResolvedLayer;
}

export class ArchiveDigestFile implements ArchiveDigests {
  readonly #stateDir: StateDir;
  readonly #known: Map<string, Entry>;
  /** The entries this run looked up or added: what save() keeps. */
  readonly #used = new Map<string, Entry>();
  #added = false;

  private constructor(stateDir: StateDir, known: Map<string, Entry>) {
    this.#stateDir = stateDir;
    this.#known = known;
  }

  static async open(stateDir: StateDir): Promise<ArchiveDigestFile> {
    const known = new Map<string, Entry>();
    try {
      const json = unsealDocument(await readFile(stateDir.path(ARCHIVE_DIGESTS_FILE), 'utf8'));
      const doc = json === null ? null : JSON.parse(json);
      if (doc?.version === VERSION && typeof doc.entries === 'object' && doc.entries !== null) {
        for (const [path, e] of Object.entries(doc.entries as Record<string, Entry>)) {
          if (typeof e?.identity === 'string' && typeof e.layer?.diffId === 'string') known.set(path, e);
        }
      }
    } catch {
      // no cache yet, or one that cannot be used: every archive is hashed
    }
    return new ArchiveDigestFile(stateDir, known);
  }

  lookup(path: string, identity: string): ResolvedLayer | null {
    const e = this.#known.get(path);
    if (!e || e.identity !== identity) return null;
    this.#used.set(path, e);
    return { ...e.layer };
  }

  remember(path: string, identity: string, layer: ResolvedLayer): void {
    this.#used.set(path, { identity, layer: { ...layer } });
    this.#added = true;
  }

  /** Writes the entries this run used, when they differ from the file's (a temporary file renamed into place). */
  async save(): Promise<void> {
    if (!this.#added && this.#used.size === this.#known.size) return;
    await writeFileWhole(this.#stateDir, ARCHIVE_DIGESTS_FILE, sealDocument(JSON.stringify({ version: VERSION, entries: Object.fromEntries(this.#used) })));
  }
}
