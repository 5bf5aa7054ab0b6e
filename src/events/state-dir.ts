// The state directory: where the event log, the snapshot, the lock and the pool's backing files live.
// thinlayer runs as root and the files here decide what it does to block devices, so the directory
// is private (0700, owned by the user running thinlayer) and no name inside it may lead out of it.
// Commands that only read open it read-only: they never create, chmod or write it.

import { lstatSync, type Stats } from 'node:fs';
import { constants as fsc } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { chmod, lstat, mkdir, open, readdir, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import { StateError, UserError } from '../errors/index.ts';

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

export interface OpenStateDirOptions {
  /**
   * For commands that only read (status, plan, doctor, events): nothing is created, chmod'ed or
   * written. A directory that exists must be a state directory (it holds the event log) or be empty;
   * anything else is refused (UserError E_NOT_STATE_DIR, exit 2): an unset variable in
   * `--state-dir "$DIR"` names the current directory, which is no place to write.
   */
  readOnly?: boolean;
}

/** The event log's name (src/events/log.ts EVENT_LOG_FILE): what makes a directory a state directory. */
const LOG_NAME = 'events.ndjson';

export async function openStateDir(dir: string, opts: OpenStateDirOptions = {}): Promise<StateDir> {
  const root = path.resolve(dir);
  let st = await lstatOrNull(root);
  if (opts.readOnly) {
    if (st !== null) checkDirectory(root, st);
    if (st !== null && !(await holdsLogOrNothing(root))) {
      throw new UserError(
        `${root} is not a thinlayer state directory: it holds files but no ${LOG_NAME}; give --state-dir (or THINLAYER_STATE_DIR) the directory that apply used`,
        { path: '--state-dir', expected: 'a state directory (one holding events.ndjson), or an empty or missing one' },
        'E_NOT_STATE_DIR',
      );
    }
    return { root, path: (rel) => resolveInside(root, rel) };
  }
  if (st === null) {
    await mkdir(root, { recursive: true, mode: PRIVATE_MODE });
    // Look again: something may have raced us to the name, and mkdir's mode is filtered by the umask.
    st = await lstatOrNull(root);
    if (st === null) throw new StateError(`state dir ${root} vanished while it was being created`);
  }
  checkDirectory(root, st);
  if ((st.mode & 0o777) !== PRIVATE_MODE) await chmod(root, PRIVATE_MODE);
  return { root, path: (rel) => resolveInside(root, rel) };
}

function checkDirectory(root: string, st: Stats): void {
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
}

/** A state directory holds the event log; an empty directory is one that nothing has been recorded in yet. */
async function holdsLogOrNothing(root: string): Promise<boolean> {
  const names = await readdir(root);
  return names.length === 0 || names.includes(LOG_NAME);
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
    let st: Stats;
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

/** fsync a directory, so that a name just made in it survives a crash as surely as the file's bytes. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, fsc.O_RDONLY | fsc.O_DIRECTORY | fsc.O_NOFOLLOW);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `data` to `rel` in the state dir whole: into a private temporary file beside it (a dot-name
 * of its own, O_EXCL and O_NOFOLLOW, mode 0600), then renamed over `rel`, so a reader sees the old
 * file or the new one, never a part. `sync` flushes the bytes before the rename. The temporary file
 * is removed when any step fails.
 */
export async function writeFileWhole(stateDir: StateDir, rel: string, data: string, opts: { sync?: boolean } = {}): Promise<void> {
  const target = stateDir.path(rel);
  const temp = path.join(path.dirname(target), `.${path.basename(target)}.${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  const handle = await open(temp, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  try {
    try {
      await handle.writeFile(data, 'utf8');
      if (opts.sync) await handle.datasync();
    } finally {
      await handle.close();
    }
    await rename(temp, target);
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw e;
  }
}
