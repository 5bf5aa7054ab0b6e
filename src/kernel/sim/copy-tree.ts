// A copy of a device's files as exact as a block-level snapshot: ownership, modes (setuid and
// sticky included), timestamps, symlinks as links, hardlinks as links, device nodes and fifos, and
// extended attributes. fs.cpSync keeps neither ownership nor hardlinks, which a real snapshot does.

import fs from 'node:fs';
import path from 'node:path';
import { splitDevT } from '../dev-t.ts';
import { llistxattr, lgetxattr, lsetxattr, lutimesExact, mknod, S_IFBLK, S_IFCHR, S_IFIFO } from '../../host/libc.ts';

export function copyTreeExact(from: string, to: string): void {
  const linked = new Map<bigint, string>(); // source inode -> first copy, for hardlinks
  const dirTimes: Array<[string, fs.BigIntStats]> = [];
  const copy = (src: string, dst: string): void => {
    const st = fs.lstatSync(src, { bigint: true });
    if (st.isDirectory()) {
      fs.mkdirSync(dst);
      for (const name of fs.readdirSync(src)) copy(path.join(src, name), path.join(dst, name));
      dirTimes.push([dst, st]);
    } else if (st.isSymbolicLink()) {
      fs.symlinkSync(fs.readlinkSync(src), dst);
    } else if (st.nlink > 1n && linked.has(st.ino)) {
      fs.linkSync(linked.get(st.ino)!, dst);
      return;
    } else if (st.isFile()) {
      fs.copyFileSync(src, dst);
    } else if (st.isFIFO() || st.isCharacterDevice() || st.isBlockDevice()) {
      const type = st.isFIFO() ? S_IFIFO : st.isCharacterDevice() ? S_IFCHR : S_IFBLK;
      const { major, minor } = splitDevT(Number(st.rdev));
      mknod(dst, type | Number(st.mode & 0o7777n), major, minor);
    } else {
      return; // sockets are not content
    }
    if (st.nlink > 1n && !st.isDirectory()) linked.set(st.ino, dst);
    fs.lchownSync(dst, Number(st.uid), Number(st.gid));
    if (!st.isSymbolicLink()) fs.chmodSync(dst, Number(st.mode & 0o7777n)); // after chown, which clears setuid
    for (const name of safeList(src)) {
      try {
        lsetxattr(dst, name, lgetxattr(src, name));
      } catch {
        // A filesystem that refuses an attribute namespace: the kernel's copy would not have it either.
      }
    }
    // To the nanosecond, as a block-level snapshot keeps them (a diff against the layer compares them).
    if (!st.isDirectory()) lutimesExact(dst, st.atimeNs, st.mtimeNs);
  };
  copy(from, to);
  // Directory times last: creating their entries changed them.
  for (const [dir, st] of dirTimes.reverse()) lutimesExact(dir, st.atimeNs, st.mtimeNs);
}

function safeList(p: string): string[] {
  try {
    return llistxattr(p);
  } catch {
    return [];
  }
}
