// What a torn write leaves: the bytes after the event log's last newline, which a crash cut short.
// Before the log is cut back to its last complete line they are kept whole in the state dir, as
// `torn/<offset>-<time>.ndjson` (0600), so that nothing thinlayer once wrote is lost without a
// trace: `doctor` reports each kept file (`log.torn-tail`) until someone has looked at it and
// removed it. Nothing acted on a torn line (every step waits for its intent to be on disk, and
// a write cut short was never acknowledged), so the file is there to be understood, not replayed.
//
// Names are resolved inside the state dir component by component (a symlink is refused), the
// directory is made 0700 and each file with O_EXCL | O_NOFOLLOW, so no path leads out of the state dir.

import { constants as fsc } from 'node:fs';
import { lstat, mkdir, open, readdir, type FileHandle } from 'node:fs/promises';
import { StateError } from '../errors/index.ts';
import type { TornTail } from './log-format.ts';
import { syncDirectory, type StateDir } from './state-dir.ts';

export const TORN_DIR = 'torn';

/** A torn tail kept in the state dir. */
export interface KeptTornTail {
  /** Relative to the state dir: `torn/<offset>-<time>.ndjson`. */
  file: string;
  bytes: number;
}

/**
 * Writes the torn tail to a new file under torn/ and makes it durable (file and directory), so the
 * log may then be cut back. Returns the file's name relative to the state dir.
 */
export async function keepTornTail(stateDir: StateDir, tail: TornTail, now: Date): Promise<string> {
  const dir = stateDir.path(TORN_DIR);
  let made = false;
  try {
    await mkdir(dir, { mode: 0o700 });
    made = true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  }
  const st = await lstat(dir);
  if (!st.isDirectory()) throw new StateError(`${dir} is not a directory; thinlayer keeps torn event log lines there`, 'E_STATE_PATH');
  const stamp = now.toISOString().replace(/[:.]/g, '-');
  for (let n = 0; ; n += 1) {
    const rel = `${TORN_DIR}/${tail.offset}-${stamp}${n === 0 ? '' : `-${n}`}.ndjson`;
    let handle: FileHandle;
    try {
      handle = await open(stateDir.path(rel), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST' && n < 100) continue;
      throw e;
    }
    try {
      await handle.writeFile(tail.data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await syncDirectory(dir);
    if (made) await syncDirectory(stateDir.root);
    return rel;
  }
}

/** The torn tails kept so far, by name (reads only: for doctor). */
export async function listKeptTornTails(stateDir: StateDir): Promise<KeptTornTail[]> {
  let names: string[];
  try {
    names = await readdir(stateDir.path(TORN_DIR));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
  const kept: KeptTornTail[] = [];
  for (const name of names.sort()) {
    const file = `${TORN_DIR}/${name}`;
    const st = await lstat(stateDir.path(file)).catch(() => null);
    if (st?.isFile()) kept.push({ file, bytes: st.size });
  }
  return kept;
}
