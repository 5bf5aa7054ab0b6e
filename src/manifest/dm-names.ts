// The names a manifest gives its pool, layers and devices end up in device-mapper names
// (devices are named after the pool and the manifest name), so they must be names the kernel
// and the tools around it accept: DM_NAME_LEN is 128 bytes with the terminating NUL, '/' would
// break /dev/mapper/NAME, and whitespace or control characters break dmsetup's output. Names are
// also shown to people: invisible and bidirectional formatting characters (Unicode Cf: U+200B,
// U+202E) and line or paragraph separators (Zl, Zp) would make two different names look alike or
// a name read backwards, so only visible characters are taken. Names are keys of plain objects
// inside thinlayer, so the names Object.prototype holds (__proto__, constructor, ...) are refused.

/** The longest device-mapper name the kernel takes, in UTF-8 bytes. */
export const DM_NAME_MAX_BYTES = 127;
/** A pool name prefixes the names of all its devices, so it is held to a much shorter limit. */
export const POOL_NAME_MAX_BYTES = 64;

const FORBIDDEN = /[\s\p{Cc}\p{Cf}\p{Zl}\p{Zp}/]/u;

const RESERVED = new Set(Object.getOwnPropertyNames(Object.prototype));

/** Why `name` cannot be a device-mapper name, or null when it can. */
export function validateDmName(name: string, maxBytes: number = DM_NAME_MAX_BYTES): string | null {
  if (name === '') return 'a name cannot be empty';
  if (name === '.' || name === '..') return `a name cannot be "${name}"`;
  if (RESERVED.has(name)) return `a name cannot be "${name}", a name JavaScript objects reserve`;
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > maxBytes) return `a name can be at most ${maxBytes} bytes long, this one is ${bytes}`;
  const bad = FORBIDDEN.exec(name);
  if (bad) {
    const ch = bad[0];
    if (ch === '/') return "a name cannot contain '/'";
    const code = `U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    if (/\s/u.test(ch)) return `a name cannot contain whitespace, here ${code}`;
    if (/\p{Cf}/u.test(ch)) return `a name cannot contain invisible or bidirectional formatting characters, here ${code}`;
    return `a name cannot contain control characters, here ${code}`;
  }
  return null;
}

/** Why `name` cannot name a pool, or null when it can. */
export function validatePoolName(name: string): string | null {
  return validateDmName(name, POOL_NAME_MAX_BYTES);
}
