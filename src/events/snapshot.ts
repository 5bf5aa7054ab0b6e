// The snapshot: the projected state as of one seq of the event log, so a run folds only the events
// after it instead of the whole log. It is a cache, never a source of truth: a missing, unreadable
// or malformed snapshot loads as null and the state is rebuilt by replaying the log.
//
// Staleness is the consumer's call (see replay.ts): a snapshot is unusable when its schema number is
// not the one the current code folds with (the shape of the state changed), when its seq is beyond
// the log's last seq (the log was replaced), or when the log line it ends at is not the one it was
// made after (its digest differs: a snapshot of another log, or of an older or newer copy of this
// one). A seq behind the log is fine: the events after it are folded on top.
//
// The file also seals its own content: it ends in `"checksum":"…"`, the CRC-32 (checksum.ts) of every
// byte before it, checked before the JSON is parsed. A flipped byte anywhere (a record's key, a thin
// id) makes it load as null, like a missing file, so the state is replayed from the log: a damaged
// cache is never what recovery, the planner or doctor decide from. A snapshot without a checksum
// (written before it had one) is discarded the same way, once.
//
// lowdb writes the whole file through a temporary file and a rename, without fsync: after a crash
// the snapshot may be the previous one or missing, both of which replay handles. Built from Low and
// DataFile directly: the lowdb presets switch to memory when NODE_ENV is 'test'.

import { Low } from 'lowdb';
import { DataFile } from 'lowdb/node';
import type { StateDir } from './state-dir.ts';
import { sealDocument, unsealDocument } from './checksum.ts';

export const SNAPSHOT_FILE = 'snapshot.json';

export interface Snapshot<S> {
  seq: number; // the last event folded into `state`
  state: S; // must survive JSON: plain objects, arrays, strings, numbers, booleans, null
  schema: number; // the state's shape version; bump it when the fold or the state changes shape
  /** The log's byte offset just after event `seq`, so a replay need not read the log before it (a hint, checked). */
  offset?: number;
  /** The sha256 of the log line of event `seq` (EventLog.lineDigestEndingAt(offset)): the log this snapshot was made from. */
  lineDigest?: string;
}

interface SnapshotDocument<S> extends Snapshot<S> {
  savedAt: string;
}

/** Thrown by the parse of a snapshot whose seal fails: load() turns it into null. */
class DamagedSnapshot extends Error {}

export class SnapshotStore<S> {
  readonly file: string;
  readonly #db: Low<SnapshotDocument<S> | null>;

  private constructor(file: string) {
    this.file = file;
    // Compact JSON (lowdb's JSONFile indents): a snapshot of 10,000 devices is read on every command.
    this.#db = new Low<SnapshotDocument<S> | null>(
      new DataFile<SnapshotDocument<S> | null>(file, {
        parse: (text) => {
          const json = unsealDocument(text);
          if (json === null) throw new DamagedSnapshot(`${file} fails its checksum`);
          return JSON.parse(json);
        },
        stringify: (data) => sealDocument(JSON.stringify(data)),
      }),
      null,
    );
  }

  static async open<S>(stateDir: StateDir, file = SNAPSHOT_FILE): Promise<SnapshotStore<S>> {
    return new SnapshotStore<S>(stateDir.path(file));
  }

  /** The saved snapshot, or null when there is none or it cannot be used. Never throws for a bad file. */
  async load(): Promise<Snapshot<S> | null> {
    this.#db.data = null; // read() keeps the old data when the file has gone
    try {
      await this.#db.read();
    } catch {
      return null; // unreadable, damaged (its checksum fails) or not JSON
    }
    const doc: unknown = this.#db.data;
    if (typeof doc !== 'object' || doc === null) return null;
    const { seq, state, schema, offset, lineDigest } = doc as Record<string, unknown>;
    if (!Number.isSafeInteger(seq) || (seq as number) < 0 || !Number.isSafeInteger(schema) || state === undefined) return null;
    const at = Number.isSafeInteger(offset) && (offset as number) >= 0 ? { offset: offset as number } : {};
    const digest = typeof lineDigest === 'string' && /^[0-9a-f]{64}$/.test(lineDigest) ? { lineDigest } : {};
    return { seq: seq as number, state: state as S, schema: schema as number, ...at, ...digest };
  }

  async save(seq: number, state: S, schema: number, offset?: number, lineDigest?: string | null): Promise<void> {
    this.#db.data = {
      seq,
      schema,
      savedAt: new Date().toISOString(),
      ...(offset !== undefined ? { offset } : {}),
      ...(lineDigest ? { lineDigest } : {}),
      state,
    };
    await this.#db.write();
  }
}
