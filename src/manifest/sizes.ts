// Sizes as people write them (`100G`, `64K`, `1.5G`, `10GiB`, `4096`) and as thinlayer shows them.
// Every unit is binary (K = 1024): block devices and the kernel count in powers of two, and a
// manifest that said `10GB` could mean either, so the decimal spellings are refused, not guessed.

import { UserError } from '../errors/index.ts';

const UNITS = ['', 'K', 'M', 'G', 'T', 'P'] as const;
const UNIT_BYTES: Record<string, number> = { '': 1, B: 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, P: 2 ** 50 };

/** The largest size thinlayer accepts: beyond it a JavaScript number no longer counts bytes exactly. */
export const MAX_SIZE_BYTES = 2 ** 53;

/** What a size should look like, for error messages. */
export const SIZE_EXPECTED = 'a size such as 10G, 512M, 64K, 1.5G or a byte count';

export type SizeReading = { ok: true; bytes: number } | { ok: false; reason: string };

// number, optional fraction, optional unit letter with optional `i`/`iB`, or a bare `B`.
const SIZE_PATTERN = /^(\d+(?:\.\d+)?|\.\d+)\s*(?:([KMGTP])(i?B?)|(B))?$/i;

/** Reads a size without throwing; `reason` says what is wrong with it. */
export function readSize(text: string | number): SizeReading {
  if (typeof text === 'number') return checkBytes(text, String(text));
  const trimmed = text.trim();
  if (trimmed.startsWith('-')) return { ok: false, reason: 'a size cannot be negative' };
  const match = SIZE_PATTERN.exec(trimmed);
  if (!match) return { ok: false, reason: `not ${SIZE_EXPECTED}` };
  const [, digits, unitLetter, unitTail, bareB] = match;
  // `10GB` is decimal to most readers; thinlayer only speaks binary units, so say so.
  if (unitLetter && unitTail.toUpperCase() === 'B') {
    const u = unitLetter.toUpperCase();
    return { ok: false, reason: `${trimmed} could be decimal or binary; write ${digits}${u} or ${digits}${u}iB, binary units` };
  }
  const unit = bareB ? 'B' : (unitLetter ?? '').toUpperCase();
  return checkBytes(Number(digits) * UNIT_BYTES[unit], trimmed);
}

function checkBytes(bytes: number, shown: string): SizeReading {
  if (!Number.isFinite(bytes)) return { ok: false, reason: `not ${SIZE_EXPECTED}` };
  if (bytes < 0) return { ok: false, reason: 'a size cannot be negative' };
  if (!Number.isInteger(bytes)) return { ok: false, reason: `${shown} is not a whole number of bytes` };
  if (bytes > MAX_SIZE_BYTES) return { ok: false, reason: `${shown} is larger than the largest size thinlayer handles (8P)` };
  return { ok: true, bytes };
}

/** Bytes from a size such as `100G`, `1.5G`, `10GiB` or `4096`. Throws UserError when it is not one. */
export function parseSize(text: string | number): number {
  const reading = readSize(text);
  if (!reading.ok) throw new UserError(`invalid size ${JSON.stringify(text)}: ${reading.reason}`, { expected: SIZE_EXPECTED });
  return reading.bytes;
}

/**
 * An exact spelling for display in IEC units (`100 GiB`, `64 KiB`, `1.5 GiB`, `1025 MiB`), so that
 * parseSize(formatSize(n)) === n always: up to three decimals in the largest unit that fits,
 * else a whole number of a smaller unit, else a plain byte count.
 */
export function formatSize(bytes: number): string {
  if (!Number.isInteger(bytes) || bytes < 1024 || bytes > MAX_SIZE_BYTES) return String(bytes);
  let largest = true;
  for (let i = UNITS.length - 1; i >= 1; i--) {
    const unitBytes = UNIT_BYTES[UNITS[i]];
    if (bytes < unitBytes) continue;
    // Fractions only in the largest unit that fits: `1.5G` reads well, `1048576.5K` does not.
    const maxDecimals = largest ? 3 : 0;
    largest = false;
    for (let decimals = 0; decimals <= maxDecimals; decimals++) {
      const shown = (bytes / unitBytes).toFixed(decimals);
      if (Number(shown) * unitBytes === bytes) return `${shown} ${UNITS[i]}iB`;
    }
  }
  return String(bytes);
}
