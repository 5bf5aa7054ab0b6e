// An append-only journal of state changes with a compacted snapshot, shared by several processes.
//
// Files, for a store named N in a directory:
//   N.snapshot.json   {"generation": g, "state": ...}, replaced by write-temp-then-rename
//   N.<g>.journal     one JSON array of ops per line, appended after the snapshot of generation g
// A writer (holding the MutationLock) appends whole lines; a reader applies complete lines only,
// so a line being written, or torn by a SIGKILL, is never seen; the next writer cuts a torn tail
// off before appending. When the journal outgrows the snapshot, the writer folds it into a new
// snapshot of generation g+1 and deletes journal g, so each mutation costs O(1) amortised.
// Readers notice other processes' changes by the snapshot's identity and the journal's length.

import fs from 'node:fs';
import path from 'node:path';
import { StateError } from '../../errors/index.ts';

export interface JournalCodec<S, Op> {
  empty(): S;
  /** Fold one op into the state (mutating it). */
  apply(state: S, op: Op): void;
  toJSON(state: S): unknown;
  fromJSON(json: unknown): S;
}

export interface JournalOptions {
  /** fsync appends and snapshots (power-cut durability); without it they survive SIGKILL only. */
  fsync: boolean;
  /** Compact once the journal is larger than this and than the last snapshot. */
  compactMinBytes?: number;
}

const DEFAULT_COMPACT_MIN_BYTES = 256 * 1024;

function statOrNull(file: string): fs.Stats | null {
  try {
    return fs.statSync(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

export class Journal<S, Op> {
  private current: S;
  private generation = 0;
  private snapshotSignature = '';
  private snapshotBytes = 0;
  /** Bytes of the current journal already applied (always at a line boundary). */
  private offset = 0;

  constructor(
    private readonly dir: string,
    private readonly name: string,
    private readonly codec: JournalCodec<S, Op>,
    private readonly options: JournalOptions,
  ) {
    fs.mkdirSync(dir, { recursive: true });
    this.current = codec.empty();
  }

  get state(): S {
    return this.current;
  }

  private get snapshotPath(): string {
    return path.join(this.dir, `${this.name}.snapshot.json`);
  }
  private journalPath(generation = this.generation): string {
    return path.join(this.dir, `${this.name}.${generation}.journal`);
  }

  /** Catch up with what other processes (or instances) wrote. Cheap when nothing changed. */
  refresh(): void {
    for (let attempt = 0; attempt < 10; attempt++) {
      this.refreshSnapshot();
      if (this.readJournalTail()) return;
      this.snapshotSignature = ''; // the journal went away under us: a compaction; start over
    }
    throw new StateError(`simulated kernel store ${this.name} keeps changing under the reader`);
  }

  private refreshSnapshot(): void {
    const st = statOrNull(this.snapshotPath);
    const signature = st ? `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}` : 'none';
    if (signature === this.snapshotSignature) return;
    let generation = 0;
    let state = this.codec.empty();
    let bytes = 0;
    if (st) {
      let text: string;
      try {
        text = fs.readFileSync(this.snapshotPath, 'utf8');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
        text = '';
      }
      if (text !== '') {
        const parsed = JSON.parse(text) as { generation: number; state: unknown };
        generation = parsed.generation;
        state = this.codec.fromJSON(parsed.state);
        bytes = text.length;
      }
    }
    this.current = state;
    this.generation = generation;
    this.snapshotBytes = bytes;
    this.offset = 0;
    this.snapshotSignature = signature;
  }

  /** Applies complete new lines. False when the journal vanished or shrank (a compaction). */
  private readJournalTail(): boolean {
    let fd: number;
    try {
      fd = fs.openSync(this.journalPath(), 'r');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      // No journal yet for this generation is normal right after a compaction, unless we had read one.
      return this.offset === 0;
    }
    try {
      const size = fs.fstatSync(fd).size;
      if (size < this.offset) return false;
      if (size === this.offset) return true;
      const buf = Buffer.alloc(size - this.offset);
      let read = 0;
      while (read < buf.length) {
        const n = fs.readSync(fd, buf, read, buf.length - read, this.offset + read);
        if (n === 0) break;
        read += n;
      }
      const end = buf.lastIndexOf(0x0a, read - 1);
      if (end < 0) return true; // only a partial line so far
      const lines = buf.subarray(0, end).toString('utf8').split('\n');
      for (const line of lines) {
        if (line === '') continue;
        let ops: Op[];
        try {
          ops = JSON.parse(line) as Op[];
        } catch {
          throw new StateError(`simulated kernel journal ${this.journalPath()} has a corrupt line at byte ${this.offset}`);
        }
        for (const op of ops) this.codec.apply(this.current, op);
      }
      this.offset += end + 1;
      return true;
    } finally {
      fs.closeSync(fd);
    }
  }

  /**
   * Append ops as one line and fold them in. The caller holds the MutationLock and has called
   * refresh(), so `offset` is the end of the last complete line: anything after it is torn.
   */
  append(ops: Op[]): void {
    if (ops.length === 0) return;
    const file = this.journalPath();
    const st = statOrNull(file);
    if (st && st.size > this.offset) fs.truncateSync(file, this.offset);
    const line = Buffer.from(`${JSON.stringify(ops)}\n`, 'utf8');
    const fd = fs.openSync(file, 'a');
    try {
      let written = 0;
      while (written < line.length) written += fs.writeSync(fd, line, written, line.length - written);
      if (this.options.fsync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    this.offset += line.length;
    for (const op of ops) this.codec.apply(this.current, op);
    this.compactIfLarge();
  }

  /** Journal bytes since the last snapshot (for tests and measurements). */
  get journalBytes(): number {
    return this.offset;
  }
  get snapshotGeneration(): number {
    return this.generation;
  }

  private compactIfLarge(): void {
    const limit = Math.max(this.options.compactMinBytes ?? DEFAULT_COMPACT_MIN_BYTES, this.snapshotBytes);
    if (this.offset > limit) this.writeSnapshot(this.current);
  }

  /** Replace everything with a snapshot of `state` (compaction, or a reset to empty). Lock held. */
  writeSnapshot(state: S): void {
    const previous = this.journalPath();
    const generation = this.generation + 1;
    const text = JSON.stringify({ generation, state: this.codec.toJSON(state) });
    const temp = `${this.snapshotPath}.${process.pid}.tmp`;
    const fd = fs.openSync(temp, 'w');
    try {
      fs.writeSync(fd, text);
      if (this.options.fsync) fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.rmSync(this.journalPath(generation), { force: true }); // a leftover from a crashed compaction
    fs.renameSync(temp, this.snapshotPath);
    fs.rmSync(previous, { force: true });
    const st = fs.statSync(this.snapshotPath);
    this.current = state;
    this.generation = generation;
    this.snapshotBytes = text.length;
    this.offset = 0;
    this.snapshotSignature = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
  }

  /** Drop all state (a reboot of the volatile store). Lock held. */
  reset(): void {
    this.writeSnapshot(this.codec.empty());
  }
}
