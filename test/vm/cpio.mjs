// A writer for the "newc" cpio format the kernel unpacks as its initramfs.
// Written here rather than shelling out to cpio(1) so the archive can hold /dev/console (a char
// device node the kernel needs before any devtmpfs is mounted) without the builder being root,
// and so the bytes depend only on the inputs (fixed mtimes and inode numbers), which keeps the cache honest.

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

/**
 * @typedef {{ type: 'dir', path: string, mode?: number }
 *         | { type: 'file', path: string, data: Buffer, mode?: number }
 *         | { type: 'symlink', path: string, target: string }
 *         | { type: 'chardev', path: string, major: number, minor: number, mode?: number }} CpioEntry
 */

function hex8(n) {
  return n.toString(16).padStart(8, '0');
}

function pad4(length) {
  return Buffer.alloc((4 - (length % 4)) % 4);
}

function record(ino, mode, data, name, rdevMajor = 0, rdevMinor = 0) {
  const nameBytes = Buffer.from(`${name}\0`);
  const header = Buffer.from(`070701${[ino, mode, 0, 0, 1, 0, data.length, 0, 0, rdevMajor, rdevMinor, nameBytes.length, 0].map(hex8).join('')}`);
  const headerAndName = Buffer.concat([header, nameBytes]);
  return [headerAndName, pad4(headerAndName.length), data, pad4(data.length)];
}

/** @param {CpioEntry[]} entries paths without a leading slash, parents before children */
export function cpioNewc(entries) {
  const parts = [];
  let ino = 1;
  for (const e of entries) {
    switch (e.type) {
      case 'dir':
        parts.push(...record(ino++, S_IFDIR | (e.mode ?? 0o755), Buffer.alloc(0), e.path));
        break;
      case 'file':
        parts.push(...record(ino++, S_IFREG | (e.mode ?? 0o644), e.data, e.path));
        break;
      case 'symlink':
        parts.push(...record(ino++, S_IFLNK | 0o777, Buffer.from(e.target), e.path));
        break;
      case 'chardev':
        parts.push(...record(ino++, S_IFCHR | (e.mode ?? 0o600), Buffer.alloc(0), e.path, e.major, e.minor));
        break;
    }
  }
  parts.push(...record(0, 0, Buffer.alloc(0), 'TRAILER!!!'));
  return Buffer.concat(parts);
}
