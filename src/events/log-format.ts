// The on-disk form of the event log, kept pure: one JSON event a line (NDJSON), `seq` and `at` first,
// every line ended by '\n'. A writer always writes whole lines, so the only damage a crash can do is
// to the end of the file: a last line without its newline, or (after a power cut) a last line of
// garbage. Anything wrong earlier in the file is corruption, never a crash, and is refused.

import { StateError } from '../errors/index.ts';
import type { ThinlayerEvent, ThinlayerEventBody } from './types.ts';

const NEWLINE = 0x0a;

/** The bytes at the end of the log that do not form a complete event. */
export interface TornTail {
  offset: number; // byte offset where the torn part starts
  bytes: number;
  text: string;
}

/** Where a scan starts: a byte offset at a line boundary, that line's number, and the seq before it. */
export interface ScanPosition {
  offset: number;
  line: number | null; // 1-based number of the line starting at `offset`; null when not counted
  seq: number; // seq of the event before `offset` (0 at the start of the log)
}

export interface ScanResult {
  events: ThinlayerEvent[];
  /** Just after the last complete, valid line. */
  end: ScanPosition;
  /** What follows `end`: an unterminated line, or a final line that is not an event. */
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

export function encodeEvents(events: ThinlayerEvent[]): Buffer {
  return Buffer.from(events.map((e) => JSON.stringify(e) + '\n').join(''), 'utf8');
}

/** The event a line holds, or null when it is not one (not JSON, or no seq/at/type). */
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

/**
 * Reads the complete lines of `buf` (the file's bytes from `from.offset`). Every line but the last
 * must be an event whose seq follows the one before it; otherwise a StateError names the file and
 * the line. Events with seq <= `skipThroughSeq` are checked for continuity but not parsed or returned
 * (replaying from a snapshot needs only the events after it).
 */
export function scanLines(buf: Buffer, from: ScanPosition, file: string, skipThroughSeq = 0): ScanResult {
  const events: ThinlayerEvent[] = [];
  let pos = 0;
  let line = from.line;
  let seq = from.seq;
  while (pos < buf.length) {
    const nl = buf.indexOf(NEWLINE, pos);
    if (nl === -1) break; // unterminated: torn, or still being written
    const text = buf.toString('utf8', pos, nl);
    const where = line === null ? `byte ${from.offset + pos}` : `line ${line} (byte ${from.offset + pos})`;
    const isLastLine = nl === buf.length - 1;

    let lineSeq: number;
    const prefix = SEQ_PREFIX.exec(text);
    if (prefix && Number(prefix[1]) <= skipThroughSeq && text.endsWith('}') && !isLastLine) {
      lineSeq = Number(prefix[1]);
    } else {
      const event = parseEventLine(text);
      if (event === null) {
        if (isLastLine) break; // a last line of garbage is a torn tail
        throw new StateError(
          `event log ${file} is corrupt at ${where}: not an event: ${preview(text)}`,
          'E_LOG_CORRUPT',
        );
      }
      lineSeq = event.seq;
      if (lineSeq > skipThroughSeq) events.push(event);
    }
    if (lineSeq !== seq + 1) {
      throw new StateError(
        `event log ${file} is corrupt at ${where}: seq ${lineSeq} follows seq ${seq} (expected ${seq + 1})`,
        'E_LOG_CORRUPT',
      );
    }
    seq = lineSeq;
    if (line !== null) line += 1;
    pos = nl + 1;
  }
  const end = { offset: from.offset + pos, line, seq };
  const tail =
    pos < buf.length ? { offset: end.offset, bytes: buf.length - pos, text: buf.toString('utf8', pos) } : null;
  return { events, end, tail };
}

function preview(text: string): string {
  return JSON.stringify(text.length > 80 ? text.slice(0, 80) + '…' : text);
}
