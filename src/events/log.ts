// The event log: the append-only source of truth, `events.ndjson` in the state dir.
//
// Appends are O(1) whatever the log's size: the file stays open in append mode, each batch is one
// write and one fdatasync, and the log remembers where its last complete line ends instead of
// re-reading. Only the holder of the state dir's lock may append (src/events/lock.ts); readers
// (`status`, `events --follow`) need no lock. Before each append the log checks the file's size, so
// a batch appended by another process that held the lock in between is picked up, not overwritten
// with duplicate seqs.
//
// Each line is sealed by its checksum as it is encoded (log-format.ts), so an append is still one
// write and one fdatasync. Every line a reader takes in is checked (opening: the last two; a replay:
// those after the snapshot's offset; verify(): all), and a damaged one is refused, the last line
// included. Only an unterminated last line is a torn write: the holder of the
// lock keeps its bytes under torn/ (torn-tail.ts) and cuts it off; readers leave it alone.

import { constants as fsc } from 'node:fs';
import { createHash } from 'node:crypto';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { InternalError, StateError } from '../errors/index.ts';
import {
  checkLine,
  damagedNewline,
  encodeEvents,
  endsSealed,
  LOG_START,
  scanLines,
  SEAL_PROBE_BYTES,
  stampEvent,
  type GoodLine,
  type ScanPosition,
  type ScanResult,
  type TornTail,
} from './log-format.ts';
import { syncDirectory, type StateDir } from './state-dir.ts';
import { keepTornTail } from './torn-tail.ts';
import type { ThinlayerEvent, ThinlayerEventBody } from '../model/events.ts';

export type { TornTail } from './log-format.ts';

/** A torn tail that repairTornTail cut off, and where its bytes were kept. */
export interface RepairedTornTail {
  offset: number;
  bytes: number;
  /** Relative to the state dir: torn/<offset>-<time>.ndjson. */
  keptAs: string;
}

export const EVENT_LOG_FILE = 'events.ndjson';

export interface EventLogOptions {
  /** The clock that stamps `at` (tests pin it). */
  now?: () => Date;
  /**
   * The caller holds the state dir's lock for as long as this instance appends (a mutating
   * session): no one else can append meanwhile, so the file's end is not looked up again before
   * each append.
   */
  exclusive?: boolean;
  /** Open to read only: the file is neither created nor written (append fails). See openLogForReading. */
  readOnly?: boolean;
}

export interface AppendOptions {
  /**
   * false: write now, fdatasync with the next durable append (or on close). For records whose loss
   * in a crash is the same as a crash just before them, such as a step's outcome: recovery already
   * treats an intent without an outcome as in doubt. Default true.
   */
  durable?: boolean;
}

export interface FollowOptions {
  signal?: AbortSignal;
  /** How often to look for new events (default 200 ms). */
  pollMs?: number;
}

const START: ScanPosition = LOG_START;
const NEWLINE = 0x0a;

export class EventLog {
  readonly file: string;
  readonly #stateDir: StateDir;
  readonly #handle: FileHandle;
  readonly #now: () => Date;
  readonly #exclusive: boolean;
  readonly #readOnly: boolean;
  /** Written by a non-durable append and not yet fdatasync'd. */
  #unsynced = false;
  /** Just after the last complete event known to be in the file. */
  #end: ScanPosition;
  /** Bytes after #end that are not a complete event: a torn tail when no one is appending. */
  #tail: TornTail | null;
  /** Serialises this instance's operations, so a read never sees half of its own append. */
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** Set when a failed append may have left the file in a state this instance cannot vouch for. */
  #broken: Error | null = null;

  private constructor(
    stateDir: StateDir,
    file: string,
    handle: FileHandle,
    end: ScanPosition,
    tail: TornTail | null,
    now: () => Date,
    exclusive: boolean,
    readOnly: boolean,
  ) {
    this.#readOnly = readOnly;
    this.#stateDir = stateDir;
    this.file = file;
    this.#handle = handle;
    this.#end = end;
    this.#tail = tail;
    this.#now = now;
    this.#exclusive = exclusive;
  }

  static async open(stateDir: StateDir, opts: EventLogOptions = {}): Promise<EventLog> {
    const file = stateDir.path(EVENT_LOG_FILE);
    const existed = await lstat(file).then(
      () => true,
      () => false,
    );
    const handle = opts.readOnly
      ? await open(file, fsc.O_RDONLY | fsc.O_NOFOLLOW)
      : await open(file, fsc.O_RDWR | fsc.O_APPEND | fsc.O_CREAT | fsc.O_NOFOLLOW, 0o600);
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw new StateError(`event log ${file} is not a regular file`, 'E_LOG_CORRUPT');
      // A new log's directory entry must survive a crash as surely as its first batch.
      if (!existed && !opts.readOnly) await syncDirectory(stateDir.root);
      const { end, tail } = await locateEnd(handle, st.size, file);
      return new EventLog(stateDir, file, handle, end, tail, opts.now ?? (() => new Date()), opts.exclusive === true, opts.readOnly === true);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /** The log opened to read only, or null when the state dir has none yet (nothing is created). */
  static async openForReading(stateDir: StateDir, opts: Omit<EventLogOptions, 'readOnly' | 'exclusive'> = {}): Promise<EventLog | null> {
    try {
      return await EventLog.open(stateDir, { ...opts, readOnly: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
  }

  /** The seq of the last complete event (0 for an empty log). */
  get lastSeq(): number {
    return this.#end.seq;
  }

  /**
   * Appends a batch: seqs lastSeq+1.., one `at` for the batch, one write, one fdatasync. The batch
   * (and every earlier non-durable one) is durable when the promise resolves. Refuses (StateError
   * E_LOG_TORN) while the file ends in a torn line: repairTornTail() first, and record what it removed.
   */
  append(bodies: ThinlayerEventBody[], opts: AppendOptions = {}): Promise<ThinlayerEvent[]> {
    const durable = opts.durable !== false;
    return this.#serialised(async () => {
      if (this.#broken) {
        throw new StateError(`event log ${this.file} is unusable after a failed append: ${this.#broken.message}`, 'E_LOG_WRITE');
      }
      if (bodies.length === 0) return [];
      // Another lock holder may have appended since this instance last did; not while we hold it.
      if (!this.#exclusive || this.#tail !== null) await this.#catchUp();
      if (this.#tail) {
        throw new StateError(
          `event log ${this.file} ends in a torn line (${this.#tail.bytes} bytes at offset ${this.#tail.offset}); it must be repaired before appending`,
          'E_LOG_TORN',
        );
      }
      const at = this.#now().toISOString();
      const events = bodies.map((body, i) => stampEvent(body, this.#end.seq + 1 + i, at));
      const bytes = encodeEvents(events);
      try {
        await writeAll(this.#handle, bytes);
        if (durable) await this.#handle.datasync();
      } catch (e) {
        await this.#rollBack(e as Error);
        throw new StateError(`could not append to event log ${this.file}: ${(e as Error).message}`, 'E_LOG_WRITE');
      }
      this.#end = {
        offset: this.#end.offset + bytes.length,
        line: this.#end.line === null ? null : this.#end.line + events.length,
        seq: events[events.length - 1].seq,
        sealed: true,
      };
      this.#unsynced = !durable;
      return events;
    });
  }

  /** Every complete event, and the torn tail if the file ends in one. Checks the whole file. */
  readAll(): Promise<{ events: ThinlayerEvent[]; tornTail: TornTail | null }> {
    return this.#serialised(async () => {
      const { events, tail } = await this.#scanFromStart(0);
      return { events, tornTail: tail };
    });
  }

  /** The unterminated bytes the file ends in, as last seen (a read-only open leaves them; doctor reports them). */
  get tornTail(): TornTail | null {
    return this.#tail;
  }

  /**
   * Checks every line of the log (checksum, seq) without parsing it; throws, naming the line, at the
   * first damaged one. A replay from a snapshot reads only the lines after it: doctor checks them all.
   */
  verify(): Promise<void> {
    return this.#serialised(async () => {
      await this.#scanFromStart(Number.MAX_SAFE_INTEGER);
    });
  }

  /** The byte offset just after the last complete event (what a snapshot at lastSeq records). */
  get endOffset(): number {
    return this.#end.offset;
  }

  /**
   * The events with seq > `seq` (what a snapshot at `seq` has not seen yet). `offset`, when given,
   * is where the snapshot says event `seq` ends: the read starts there, so a long log is not read
   * from its start, if the log bears it out (a line ends just before it and the next event is seq
   * + 1); otherwise the whole log is read.
   */
  /**
   * The sha256 (hex) of the complete line that ends just before `offset` (its newline included), or
   * null when no line ends there. A snapshot stores it for the event it ends at, so a snapshot of
   * another log (same seq, same offset) is told apart from one of this log.
   */
  lineDigestEndingAt(offset: number): Promise<string | null> {
    return this.#serialised(async () => {
      if (offset <= 0 || offset > this.#end.offset) return null;
      const last = Buffer.alloc(1);
      await this.#handle.read(last, 0, 1, offset - 1);
      if (last[0] !== NEWLINE) return null;
      // Walk back a chunk at a time to the previous newline (or the file's start).
      const chunks: Buffer[] = [];
      let start = offset - 1;
      for (;;) {
        const from = Math.max(0, start - 65536);
        const buf = Buffer.alloc(start - from);
        await this.#handle.read(buf, 0, buf.length, from);
        const nl = buf.lastIndexOf(NEWLINE);
        if (nl >= 0) {
          chunks.unshift(buf.subarray(nl + 1));
          break;
        }
        chunks.unshift(buf);
        start = from;
        if (from === 0) break;
      }
      const hash = createHash('sha256');
      for (const c of chunks) hash.update(c);
      hash.update(last);
      return hash.digest('hex');
    });
  }

  readFrom(seq: number, offset?: number): Promise<ThinlayerEvent[]> {
    return this.#serialised(async () => (offset !== undefined ? await this.#scanFromOffset(seq, offset) : null) ?? (await this.#scanFromStart(seq)).events);
  }

  /**
   * Keeps a torn last line (one without its newline) under torn/ in the state dir, then truncates it,
   * and says what it removed and where it is kept, so the caller can record a `recovery.note`; null
   * when the log is whole. Only the holder of the lock may call it: another process's append in
   * flight looks torn too. (A complete last line that fails its check is never cut: opening refuses it.)
   */
  repairTornTail(): Promise<RepairedTornTail | null> {
    return this.#serialised(async () => {
      // A reader writes nothing, the kept copy included (commands that only read leave the state dir as it is).
      if (this.#readOnly) throw new InternalError(`repairTornTail on event log ${this.file} opened to read only`);
      if (this.#broken) {
        throw new StateError(`event log ${this.file} is unusable after a failed append: ${this.#broken.message}`, 'E_LOG_WRITE');
      }
      await this.#catchUp();
      const torn = this.#tail;
      if (torn === null) return null;
      // Durable in its own file before it leaves the log: a crash in between leaves it in both.
      const keptAs = await keepTornTail(this.#stateDir, torn, this.#now());
      await this.#handle.truncate(torn.offset);
      await this.#handle.datasync();
      this.#tail = null;
      return { offset: torn.offset, bytes: torn.bytes, keptAs };
    });
  }

  /**
   * Yields the events with seq > `fromSeq`, then every event appended later (by any process) until
   * the signal aborts. Polls the file's size; reads through its own file handle, so it outlives close().
   */
  async *follow(fromSeq: number, opts: FollowOptions = {}): AsyncIterable<ThinlayerEvent> {
    const pollMs = opts.pollMs ?? 200;
    const { signal } = opts;
    const reader = await open(this.file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
    try {
      let position = START;
      while (!signal?.aborted) {
        const { size } = await reader.stat();
        if (size < position.offset) {
          throw new StateError(`event log ${this.file} shrank below byte ${position.offset} while being followed; it was replaced`, 'E_LOG_REPLACED');
        }
        if (size > position.offset) {
          const bytes = await readRange(reader, position.offset, size - position.offset);
          // An unterminated tail is an append still arriving (or a torn line awaiting repair): it is
          // left for the next look, which reads again from the end of the last complete event.
          const { events, end } = scanLines(bytes, position, this.file, fromSeq);
          position = end;
          for (const event of events) {
            if (signal?.aborted) return;
            yield event;
          }
        }
        try {
          await sleep(pollMs, undefined, { signal });
        } catch {
          return; // aborted
        }
      }
    } finally {
      await reader.close();
    }
  }

  /** Closes the file once pending operations finish, making non-durable appends durable first. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#queue.catch(() => undefined);
    try {
      if (this.#unsynced) await this.#handle.datasync();
    } finally {
      await this.#handle.close();
    }
  }

  #serialised<T>(op: () => Promise<T>): Promise<T> {
    const run = async () => {
      if (this.#closed) throw new StateError(`event log ${this.file} is closed`, 'E_LOG_CLOSED');
      return op();
    };
    const result = this.#queue.then(run, run);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /** Takes in whatever follows #end: another lock holder's appends, or a torn tail. */
  async #catchUp(): Promise<void> {
    const { size } = await this.#handle.stat();
    if (size < this.#end.offset) {
      throw new StateError(
        `event log ${this.file} shrank from ${this.#end.offset} to ${size} bytes beneath this process; it was truncated or replaced`,
        'E_LOG_REPLACED',
      );
    }
    if (size === this.#end.offset) {
      this.#tail = null;
      return;
    }
    const bytes = await readRange(this.#handle, this.#end.offset, size - this.#end.offset);
    let scanned: ScanResult;
    try {
      scanned = scanLines(bytes, this.#end, this.file, this.#end.seq);
    } catch (e) {
      // Rescan from the start so the error names the line, which a scan from the middle cannot know.
      if (this.#end.line === null) await this.#scanFromStart(0);
      throw e;
    }
    this.#end = scanned.end;
    this.#tail = scanned.tail;
  }

  /** The events after `seq`, read from `offset`; null when the log does not agree that event `seq` ends there. */
  async #scanFromOffset(seq: number, offset: number): Promise<ThinlayerEvent[] | null> {
    const { size } = await this.#handle.stat();
    if (offset > size || (offset === 0) !== (seq === 0)) return null;
    const before = offset > 0 ? await readRange(this.#handle, Math.max(0, offset - SEAL_PROBE_BYTES), Math.min(offset, SEAL_PROBE_BYTES)) : null;
    if (before !== null && before[before.length - 1] !== NEWLINE) return null;
    let scanned: ScanResult;
    try {
      // A sealed line before the offset means every line after it must be sealed too.
      const from = { offset, line: null, seq, sealed: before !== null && endsSealed(before) };
      scanned = scanLines(await readRange(this.#handle, offset, size - offset), from, this.file, seq);
    } catch {
      return null; // not where event seq ends (or a corrupt line, which the full read will name)
    }
    // Nothing after the offset proves nothing by itself: the end must be the one found on opening.
    if (scanned.events.length === 0 && !(offset === this.#end.offset && seq === this.#end.seq)) return null;
    this.#end = scanned.end;
    this.#tail = scanned.tail;
    return scanned.events;
  }

  async #scanFromStart(skipThroughSeq: number) {
    const { size } = await this.#handle.stat();
    const bytes = await readRange(this.#handle, 0, size);
    const scanned = scanLines(bytes, START, this.file, skipThroughSeq);
    this.#end = scanned.end;
    this.#tail = scanned.tail;
    return scanned;
  }

  /** After a failed write, cut the file back to its last complete event so it stays appendable. */
  async #rollBack(cause: Error): Promise<void> {
    try {
      await this.#handle.truncate(this.#end.offset);
      await this.#handle.datasync();
    } catch {
      this.#broken = cause;
    }
  }
}

/**
 * Finds the end of the last complete event by reading back from the end of the file, so opening a
 * long log does not read all of it. Only the last line may be torn; a bad line before it means
 * corruption, and a full scan then names its line.
 */
async function locateEnd(handle: FileHandle, size: number, file: string): Promise<{ end: ScanPosition; tail: TornTail | null }> {
  if (size === 0) return { end: START, tail: null };
  for (let window = 64 * 1024; ; window *= 4) {
    const start = Math.max(0, size - window);
    const found = classifyEnd(await readRange(handle, start, size - start), start);
    if (found === 'need-more') continue; // a line reaches back beyond the window
    if (found === 'corrupt') {
      scanLines(await readRange(handle, 0, size), START, file); // throws, naming the line
      throw new StateError(`event log ${file} is corrupt before its last line`, 'E_LOG_CORRUPT');
    }
    return found;
  }
}

/**
 * Decides the end of the log from its last bytes (`bytes` start at file offset `start`): what follows
 * the last newline is a torn tail; the last two complete lines must pass their checks and follow each
 * other in seq (a full scan, on 'corrupt', says which line is bad and why).
 */
function classifyEnd(bytes: Buffer, start: number): { end: ScanPosition; tail: TornTail | null } | 'need-more' | 'corrupt' {
  const atFileStart = start === 0;
  const lastNewline = bytes.lastIndexOf(NEWLINE);
  if (lastNewline === -1 && !atFileStart) return 'need-more';
  const tail = lastNewline < bytes.length - 1 ? tornTail(bytes, start, start + lastNewline + 1) : null;
  const lines = lastCompleteLines(bytes, start, 2);
  if (lines.length < 2 && !atFileStart) return 'need-more'; // the line before the last one decides whether it must be sealed
  // A tail that is a whole line but for a damaged newline is damage, not a torn write.
  const tailIsDamaged = (seq: number) => tail !== null && damagedNewline(bytes.subarray(tail.offset - start), 0, seq) !== null;
  if (lines.length === 0) return tailIsDamaged(0) ? 'corrupt' : { end: START, tail };
  let before: GoodLine | null = null;
  if (lines.length === 2) {
    const verdict = checkLine(bytes, lines[0].from, lines[0].newline, false);
    if (typeof verdict === 'string') return 'corrupt';
    before = verdict;
  }
  const last = lines[lines.length - 1];
  const verdict = checkLine(bytes, last.from, last.newline, before?.sealed ?? false);
  if (typeof verdict === 'string' || verdict.seq !== (before ? before.seq + 1 : 1) || tailIsDamaged(verdict.seq)) return 'corrupt';
  const endOffset = start + last.newline + 1;
  // The line number is known only when the window reaches the start; a later rescan finds it if needed.
  const line = atFileStart ? countNewlines(bytes, endOffset) + 1 : null;
  return { end: { offset: endOffset, line, seq: verdict.seq, sealed: verdict.sealed }, tail };
}

/** A complete line within a window: its first byte and its newline, as indexes into the window. */
interface RawLine {
  from: number;
  newline: number;
}

/** Up to `max` newline-terminated lines at the end of `bytes` whose beginning the window shows, in file order. */
function lastCompleteLines(bytes: Buffer, start: number, max: number): RawLine[] {
  const lines: RawLine[] = [];
  let nl = bytes.lastIndexOf(NEWLINE);
  while (nl !== -1 && lines.length < max) {
    const prev = nl === 0 ? -1 : bytes.lastIndexOf(NEWLINE, nl - 1);
    if (prev === -1 && start > 0) break; // this line begins before the window
    lines.unshift({ from: prev + 1, newline: nl });
    nl = prev;
  }
  return lines;
}

function countNewlines(bytes: Buffer, end: number): number {
  let count = 0;
  for (let i = bytes.indexOf(NEWLINE); i !== -1 && i < end; i = bytes.indexOf(NEWLINE, i + 1)) count += 1;
  return count;
}

function tornTail(bytes: Buffer, start: number, offset: number): TornTail {
  return { offset, bytes: start + bytes.length - offset, data: Buffer.from(bytes.subarray(offset - start)) };
}

async function readRange(handle: FileHandle, offset: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let filled = 0;
  while (filled < length) {
    const { bytesRead } = await handle.read(buf, filled, length - filled, offset + filled);
    if (bytesRead === 0) break; // the file is shorter than it was a moment ago
    filled += bytesRead;
  }
  return filled === length ? buf : buf.subarray(0, filled);
}

async function writeAll(handle: FileHandle, bytes: Buffer): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    // O_APPEND: every write lands at the current end, so a short write simply continues there.
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written);
    written += bytesWritten;
  }
}
