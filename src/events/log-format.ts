// The on-disk form of the event log, kept pure: one JSON event a line (NDJSON), `seq` and `at` first,
// every line ended by '\n' and sealed by a checksum of its own bytes:
//
//   {"seq":7,"at":"2026-…","type":"step.done",…,"crc":"1a2b3c4d"}
//
// `crc` is the CRC-32 (src/events/checksum.ts) of every byte of the line before `,"crc":`, and always
// comes last, so a writer seals a line as it encodes it and a reader checks it before parsing it.
//
// A writer always writes whole lines, so the only damage a crash can do is a last line without its
// newline: a torn write, which is cut off (its bytes kept, see torn-tail.ts). A line that ends in its
// newline was written whole; if it fails its check (not an event, a checksum that does not match, a
// seq out of order) something damaged it afterwards, wherever it is in the file, the last line
// included, and the log is refused rather than silently shortened: that line may be an acknowledged
// commit, or an intent whose loss would make recovery delete what it made.
//
// Logs written before lines had checksums: a line without `crc` is accepted only while no line before
// it had one (the log's older part). Once a line carries a checksum, every later line must, so
// damage cannot pass a line off as an old one by breaking its `crc` field.

import { StateError } from '../errors/index.ts';
import { checksumHex, crc32 } from './checksum.ts';
import type { ThinlayerEvent, ThinlayerEventBody } from '../model/events.ts';

const NEWLINE = 0x0a;
const QUOTE = 0x22;
const CLOSE_BRACE = 0x7d;
/** What comes between a line's content and its checksum. */
const SEAL_KEY = Buffer.from(',"crc":"', 'latin1');
/** `,"crc":"` + 8 hex digits + `"}`. */
const SEAL_LENGTH = SEAL_KEY.length + 8 + 2;

/** The bytes at the end of the log that do not form a complete line: a write a crash cut short. */
export interface TornTail {
  offset: number; // byte offset where the torn part starts
  bytes: number;
  /** All of it, so that it can be kept before the log is cut back (torn-tail.ts). */
  data: Buffer;
}

/** Where a scan starts: a byte offset at a line boundary, that line's number, and the seq before it. */
export interface ScanPosition {
  offset: number;
  line: number | null; // 1-based number of the line starting at `offset`; null when not counted
  seq: number; // seq of the event before `offset` (0 at the start of the log)
  /** The line before `offset` carries a checksum, so every line from `offset` on must. */
  sealed: boolean;
}

export const LOG_START: ScanPosition = { offset: 0, line: 1, seq: 0, sealed: false };

export interface ScanResult {
  events: ThinlayerEvent[];
  /** Just after the last complete line (every complete line is a valid event, or the scan throws). */
  end: ScanPosition;
  /** What follows `end`: an unterminated line. */
  tail: TornTail | null;
}

/** The envelope first, so a reader can find a line's seq without parsing the whole line. */
export function stampEvent(body: ThinlayerEventBody, seq: number, at: string): ThinlayerEvent {
  const event = { seq, at, ...body } as ThinlayerEvent;
  // A body that carries its own seq or at (a re-appended event) must not override the log's.
  event.seq = seq;
  event.at = at;
  return event;
}

/** The lines of a batch, each sealed by its checksum: what one append writes. */
export function encodeEvents(events: ThinlayerEvent[]): Buffer {
  let text = '';
  for (const e of events) text += sealLine(JSON.stringify(e));
  return Buffer.from(text, 'utf8');
}

/** `{…}` → `{…,"crc":"…"}\n`. The checksum is of the UTF-8 bytes, which is what zlib.crc32 takes a string as. */
function sealLine(json: string): string {
  const content = json.slice(0, -1);
  return `${content},"crc":"${checksumHex(content)}"}\n`;
}

/** The event a line's JSON holds, or null when it is not one (not JSON, or no seq/at/type). */
export function parseEventLine(text: string): ThinlayerEvent | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return null;
  const e = value as Record<string, unknown>;
  if (!Number.isSafeInteger(e.seq) || (e.seq as number) < 1) return null;
  if (typeof e.at !== 'string' || typeof e.type !== 'string') return null;
  return value as ThinlayerEvent;
}

const SEQ_PREFIX = /^\{"seq":(\d+),/;

/** A line that passed its checks: its seq, whether it is sealed, and its event (null when skipped unparsed). */
export interface GoodLine {
  seq: number;
  sealed: boolean;
  event: ThinlayerEvent | null;
}

/**
 * Checks the line `buf[start, end)` (its newline at `end`): its checksum, when it has one (and it must
 * when `afterSealed`), then its JSON. A line whose seq is at most `skipThroughSeq` is not parsed
 * (replaying from a snapshot needs only the events after it), but its checksum is still checked.
 * Returns why it is bad, as a string, when it is.
 */
export function checkLine(buf: Buffer, start: number, end: number, afterSealed: boolean, skipThroughSeq = 0): GoodLine | string {
  const sealed = hasSeal(buf, start, end);
  const contentEnd = sealed ? end - SEAL_LENGTH : end;
  if (sealed) {
    // Compared as numbers (no strings made per line: a replay checks thousands of lines).
    const recorded = hexValue(buf, end - 10);
    if (recorded < 0)
      return `its checksum ${JSON.stringify(buf.toString('latin1', end - 10, end - 2))} is not 8 hex digits: ${preview(buf.toString('utf8', start, end))}`;
    const computed = crc32(buf.subarray(start, contentEnd));
    if (computed !== recorded) {
      return `its checksum does not match its content (recorded ${buf.toString('latin1', end - 10, end - 2)}, computed ${checksumHex(buf.subarray(start, contentEnd))}): ${preview(buf.toString('utf8', start, end))}`;
    }
  } else if (afterSealed) {
    return `it carries no checksum, but the line before it does (every line after the first with a checksum has one): ${preview(buf.toString('utf8', start, end))}`;
  }
  if (skipThroughSeq > 0) {
    const head = SEQ_PREFIX.exec(buf.toString('latin1', start, Math.min(contentEnd, start + 40)));
    // A sealed line's checksum vouches for its JSON (its writer made it); an old one must at least close.
    if (head && Number(head[1]) <= skipThroughSeq && (sealed || buf[end - 1] === CLOSE_BRACE)) return { seq: Number(head[1]), sealed, event: null };
  }
  const text = sealed ? `${buf.toString('utf8', start, contentEnd)}}` : buf.toString('utf8', start, end);
  const event = parseEventLine(text);
  if (event === null) return `not an event: ${preview(text)}`;
  return { seq: event.seq, sealed, event };
}

/** The line ends in `,"crc":"????????"}`. */
function hasSeal(buf: Buffer, start: number, end: number): boolean {
  if (end - start <= SEAL_LENGTH || buf[end - 1] !== CLOSE_BRACE || buf[end - 2] !== QUOTE) return false;
  const at = end - SEAL_LENGTH;
  for (let i = 0; i < SEAL_KEY.length; i += 1) if (buf[at + i] !== SEAL_KEY[i]) return false;
  return true;
}

/** The value of the 8 lower-case hex digits at `at`, or -1 when they are not that. */
function hexValue(buf: Buffer, at: number): number {
  let value = 0;
  for (let i = at; i < at + 8; i += 1) {
    const c = buf[i];
    const digit = c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

/** Whether `buf`, the last bytes of a complete line (its newline last), ends in a seal; give it SEAL_PROBE_BYTES (fewer at the file's start). */
export function endsSealed(buf: Buffer): boolean {
  const end = buf.length - 1;
  return end > SEAL_LENGTH && buf[end] === NEWLINE && hasSeal(buf, 0, end);
}

/** How many bytes before a line boundary endsSealed needs. */
export const SEAL_PROBE_BYTES = SEAL_LENGTH + 2;

/**
 * Why an unterminated tail is damage rather than a torn write, or null when it may be torn: it is a
 * whole sealed line (its checksum matches, its seq is next) followed by one byte that is not a
 * newline. A write cut short ends before its newline; it never puts another byte in its place, so
 * that byte is the newline, damaged.
 */
export function damagedNewline(buf: Buffer, start: number, afterSeq: number): string | null {
  const end = buf.length - 1;
  if (end - start <= SEAL_LENGTH || !hasSeal(buf, start, end)) return null;
  const verdict = checkLine(buf, start, end, true);
  if (typeof verdict === 'string' || verdict.seq !== afterSeq + 1) return null;
  return `its content is whole and its checksum matches, but it ends in byte 0x${buf[end].toString(16).padStart(2, '0')} where its newline should be`;
}

/** The StateError for a line that fails its check. */
export function corruptLine(file: string, where: string, why: string, lastLine: boolean): StateError {
  const whole = lastLine ? ' (it is the last line, but it ends in a newline, so it was written whole: this is damage, not a torn write)' : '';
  return new StateError(`event log ${file} is corrupt at ${where}: ${why}${whole}`, 'E_LOG_CORRUPT');
}

/**
 * Reads the complete lines of `buf` (the file's bytes from `from.offset`). Every complete line must
 * pass its check and follow the seq before it; otherwise a StateError names the file and the line.
 * Events with seq <= `skipThroughSeq` are checked but not returned. What follows the last newline is
 * the tail: a torn write, or an append still arriving.
 */
export function scanLines(buf: Buffer, from: ScanPosition, file: string, skipThroughSeq = 0): ScanResult {
  const events: ThinlayerEvent[] = [];
  let pos = 0;
  let line = from.line;
  let seq = from.seq;
  let sealed = from.sealed;
  while (pos < buf.length) {
    const nl = buf.indexOf(NEWLINE, pos);
    if (nl === -1) break; // unterminated: torn, or still being written
    const where = line === null ? `byte ${from.offset + pos}` : `line ${line} (byte ${from.offset + pos})`;
    const verdict = checkLine(buf, pos, nl, sealed, skipThroughSeq);
    if (typeof verdict === 'string') throw corruptLine(file, where, verdict, nl === buf.length - 1);
    if (verdict.seq !== seq + 1) {
      throw corruptLine(file, where, `seq ${verdict.seq} follows seq ${seq} (expected ${seq + 1})`, nl === buf.length - 1);
    }
    if (verdict.event !== null && verdict.seq > skipThroughSeq) events.push(verdict.event);
    seq = verdict.seq;
    sealed = verdict.sealed;
    if (line !== null) line += 1;
    pos = nl + 1;
  }
  const end = { offset: from.offset + pos, line, seq, sealed };
  const damaged = pos < buf.length ? damagedNewline(buf, pos, seq) : null;
  if (damaged !== null) throw corruptLine(file, line === null ? `byte ${end.offset}` : `line ${line} (byte ${end.offset})`, damaged, true);
  const tail = pos < buf.length ? { offset: end.offset, bytes: buf.length - pos, data: Buffer.from(buf.subarray(pos)) } : null;
  return { events, end, tail };
}

export function preview(text: string): string {
  return JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…` : text);
}
