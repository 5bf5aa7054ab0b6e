// Linux dev_t: a device number as stat(2) reports it (Node's `rdev`), and the major:minor form that
// device-mapper tables and /proc name devices by. glibc's layout (gnu_dev_major/minor/makedev): the
// minor's low byte, then 12 bits of major, then the minor's high bits, then the major's high bits.

/** Splits a dev_t into major and minor, the way glibc's gnu_dev_major and gnu_dev_minor do. */
export function splitDevT(rdev: number | bigint): { major: number; minor: number } {
  const dev = BigInt(rdev);
  // 32-bit masks, as glibc's: an unbounded mask would take the major's high bits into the minor.
  return { major: Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n)), minor: Number((dev & 0xffn) | ((dev >> 12n) & 0xffffff00n)) };
}

/** glibc's makedev: the 64-bit dev_t of a major and minor number. */
export function makeDevT(major: number, minor: number): bigint {
  const ma = BigInt(major);
  const mi = BigInt(minor);
  return ((ma & 0xfffn) << 8n) | ((ma & 0xfffff000n) << 32n) | (mi & 0xffn) | ((mi & 0xffffff00n) << 12n);
}

/** `major:minor`, as a table names a device. */
export function majorMinorOf(rdev: number | bigint): string {
  const { major, minor } = splitDevT(rdev);
  return `${major}:${minor}`;
}
