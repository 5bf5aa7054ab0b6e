// Whether a directory or file on the host can be trusted by a process running as root: only root
// (or the user running thinlayer) may be able to change it. A directory that someone else can write
// lets them put a symlink where a name was expected, or swap a directory for another between a
// check and its use; a file they can write lets them change what thinlayer does.

export interface Ownership {
  uid: number;
  mode: number;
}

const STICKY = 0o1000;

function trustedUid(uid: number): boolean {
  return uid === 0 || uid === process.geteuid?.();
}

function modeText(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/**
 * Why a directory is not trusted, or null. A world-writable directory is trusted only with the
 * sticky bit and owned by root (like /tmp): there nobody can rename or remove an entry they do not
 * own, so the root-owned names below it stay as they are; a name that is missing still gets checked
 * once it exists.
 */
export function untrustedDirectory(st: Ownership): string | null {
  if (!trustedUid(st.uid)) return `it is owned by uid ${st.uid}, not by root`;
  if ((st.mode & 0o022) !== 0 && !((st.mode & STICKY) !== 0 && st.uid === 0)) {
    return `${(st.mode & 0o002) !== 0 ? 'others' : 'its group'} can write to it (mode ${modeText(st.mode)})`;
  }
  return null;
}

/** Why a file (or a directory thinlayer reads its instructions from) is not trusted, or null. */
export function untrustedFile(st: Ownership): string | null {
  if (!trustedUid(st.uid)) return `it is owned by uid ${st.uid}, not by root`;
  if ((st.mode & 0o022) !== 0) return `${(st.mode & 0o002) !== 0 ? 'others' : 'its group'} can write to it (mode ${modeText(st.mode)})`;
  return null;
}
