// The checksum that seals each event log line and snapshot.json: CRC-32 (the zlib/PNG polynomial),
// as 8 lower-case hex digits. It is there to catch damage (a flipped bit, a sector of garbage), not
// tampering: whoever can write the state dir can write a matching checksum. CRC-32 finds every
// error burst up to 32 bits long, at the speed of zlib's native code (zlib.crc32, Node 20.15 and
// later); older Node 20 releases get the same function from a small table, so a log written by one
// is read by the other.

import zlib from 'node:zlib';

type Crc32 = (data: string | Uint8Array) => number;

const native = (zlib as unknown as { crc32?: Crc32 }).crc32;

let table: Uint32Array | null = null;

function crc32Table(): Uint32Array {
  if (table) return table;
  table = new Uint32Array(256);
  for (let n = 0; n < 256; n += 1) {
    let c = n;
    for (let k = 0; k < 8; k += 1) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/** CRC-32 in plain JavaScript: the fallback, and the reference the tests hold zlib's against. */
export function crc32Portable(data: string | Uint8Array): number {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const t = crc32Table();
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i += 1) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** CRC-32 of a string's UTF-8 bytes, or of bytes. */
export const crc32: Crc32 = native ?? crc32Portable;

/** The checksum as it is written: 8 lower-case hex digits. */
export function checksumHex(data: string | Uint8Array): string {
  return crc32(data).toString(16).padStart(8, '0');
}

export const CHECKSUM_HEX = /^[0-9a-f]{8}$/;

/** `,"checksum":"` + 8 hex digits + `"}`: how a sealed JSON document ends. */
const DOCUMENT_SEAL = ',"checksum":"';
const DOCUMENT_SEAL_LENGTH = DOCUMENT_SEAL.length + 8 + 2;

/**
 * A JSON object's text with its checksum added as its last member, `"checksum":"…"`, the CRC-32 of
 * every byte before `,"checksum":`. For the state dir's caches (snapshot.json, layer-digests.json),
 * so that a damaged one is told from a good one before anything is decided from it.
 */
export function sealDocument(json: string): string {
  const content = json.slice(0, -1);
  return `${content}${DOCUMENT_SEAL}${checksumHex(content)}"}`;
}

/** The JSON a sealed document holds (without its checksum), or null when the seal is missing or does not match. */
export function unsealDocument(text: string): string | null {
  const seal = text.slice(-DOCUMENT_SEAL_LENGTH);
  if (!seal.startsWith(DOCUMENT_SEAL) || !seal.endsWith('"}')) return null;
  const recorded = seal.slice(DOCUMENT_SEAL.length, -2);
  const content = text.slice(0, -DOCUMENT_SEAL_LENGTH);
  if (!CHECKSUM_HEX.test(recorded) || checksumHex(content) !== recorded) return null;
  return `${content}}`;
}
