// The state directory: where the event log, the snapshot, the lock and the pool's backing files live.
// thinlayer runs as root and the files here decide what it does to block devices, so the directory
// is private (0700, owned by the user running thinlayer) and no name inside it may lead out of it.

import { lstatSync } from 'node:fs';
import { chmod, lstat, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { StateError } from '../errors/index.ts';

export interface StateDir {
  /** Absolute path of the state directory. */
  root: string;
  /**
   * The absolute path of a name inside the state directory. Refuses (StateError) absolute names,
   * `..` segments and any existing component that is a symlink, so nothing is followed out of it.
   */
  path(rel: string): string;
}

const PRIVATE_MODE = 0o700;

export async function openStateDir(dir: string): Promise<StateDir> {
  const root = path.resolve(dir);
  let st = await lstatOrNull(root);
  if (st === null) {
    await mkdir(root, { recursive: true, mode: PRIVATE_MODE });
    // Look again: something may have raced us to the name, and mkdir's mode is filtered by the umask.
    st = await lstatOrNull(root);
    if (st === null) throw new StateError(`state dir ${root} vanished while it was being created`);
  }
  if (st.isSymbolicLink()) {
    throw new StateError(`state dir ${root} is a symlink; give the real directory instead`, 'E_STATE_DIR');
  }
  if (!st.isDirectory()) throw new StateError(`state dir ${root} is not a directory`, 'E_STATE_DIR');
  const euid = process.geteuid?.();
  if (euid !== undefined && st.uid !== euid) {
    throw new StateError(
      `state dir ${root} is owned by uid ${st.uid}, not by uid ${euid} running thinlayer; whoever owns it could change what thinlayer does`,
      'E_STATE_DIR',
    );
  }
  if ((st.mode & 0o777) !== PRIVATE_MODE) await chmod(root, PRIVATE_MODE);
  return { root, path: (rel) => resolveInside(root, rel) };
}

function resolveInside(root: string, rel: string): string {
  const refuse = (why: string): never => {
    throw new StateError(`refusing state dir path ${JSON.stringify(rel)} in ${root}: ${why}`, 'E_STATE_PATH');
  };
  if (rel.includes('\0')) refuse('it contains a NUL byte');
  if (path.isAbsolute(rel)) refuse('it is absolute; names in the state dir are relative');
  const segments = rel.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.length === 0) refuse('it names the state dir itself, not a file in it');
  if (segments.includes('..')) refuse('it contains a `..` segment');

  // Walk the existing components: a symlink anywhere could point out of the state dir.
  let current = root;
  for (const segment of segments) {
    current = path.join(current, segment);
    let st;
    try {
      st = lstatSync(current);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      // The rest does not exist yet (or cannot: a file stands where a directory should), so no
      // symlink can hide in it; whoever opens the path gets the real error.
      if (code === 'ENOENT' || code === 'ENOTDIR') break;
      throw e;
    }
    if (st.isSymbolicLink()) refuse(`${current} is a symlink`);
  }
  return path.join(root, ...segments);
}

async function lstatOrNull(p: string) {
  try {
    return await lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}
