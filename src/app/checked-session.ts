// A mutating session for a command given a manifest, opened only once the manifest has passed
// every check. On a state dir that has no event log yet (missing, or new), the desired state is read
// and checked before the session is opened: opening creates the state dir, takes the lock, starts
// the simulated kernel and records the identity, and a refused manifest must leave none of these
// behind. On a state dir with a log, the checks need what it records and run inside the session,
// where nothing new is created before them (the identity and the simulator's directory were made
// by the first command that used it).

import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { Session, type SessionOptions } from '../engine/session.ts';
import { initialState } from '../lifecycle/projection.ts';
import { ArchiveDigestFile } from '../layers/archive-digests.ts';
import { EVENT_LOG_FILE } from '../events/log.ts';
import { openStateDir } from '../events/state-dir.ts';
import { UserError } from '../errors/index.ts';
import { readDesired, type DesiredOptions, type DesiredState, type ManifestInput } from './desired.ts';

/** Whether the state dir at `dir` holds an event log (or cannot be looked at: then the session says why). */
export async function stateDirHasLog(dir: string): Promise<boolean> {
  try {
    await lstat(path.join(path.resolve(dir), EVENT_LOG_FILE));
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ENOTDIR';
  }
}

/** Whether there is anything at `dir` (a state dir that does not exist has nothing recorded, and no one working in it). */
export async function stateDirExists(dir: string): Promise<boolean> {
  return (await lstat(path.resolve(dir)).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? null : Promise.reject(e)))) !== null;
}

/**
 * The desired state checked against a state dir with nothing recorded, or null when the state dir
 * has a log (the checks then need the session). Writes nothing anywhere.
 */
export async function checkBeforeCreating(
  stateDir: string,
  input: ManifestInput,
  opts: DesiredOptions = {},
): Promise<(DesiredState & { digests: ArchiveDigestFile }) | null> {
  if (await stateDirHasLog(stateDir)) return null;
  // Opened read-only: a directory that holds files but no log is left to the session to judge.
  const dir = await openStateDir(stateDir, { readOnly: true }).catch((e) =>
    e instanceof UserError && e.code === 'E_NOT_STATE_DIR' ? null : Promise.reject(e),
  );
  if (!dir) return null;
  const digests = await ArchiveDigestFile.open(dir);
  return { ...(await readDesired(input, initialState(), { digests, ...opts })), digests };
}

/** What the checks look at is still empty: the early check holds (the identity may have been recorded since). */
function nothingRecorded(s: Session): boolean {
  return s.state.desired === null && s.state.poolSpec === null && s.state.pool === null && Object.keys(s.state.things).length === 0;
}

/**
 * Runs `work` in a mutating session on the desired state read from `input`, checked before anything
 * is created or recorded. The archive digests found are saved once the checks have passed.
 */
export async function withCheckedSession<T>(
  opts: SessionOptions,
  input: ManifestInput,
  work: (s: Session, ready: DesiredState) => Promise<T>,
  desiredOpts: DesiredOptions = {},
): Promise<T> {
  const early = await checkBeforeCreating(opts.stateDir, input, desiredOpts);
  const session = await Session.open(opts);
  try {
    let ready: DesiredState;
    // Another command may have recorded something between the check and the lock: then check again.
    if (early && nothingRecorded(session)) {
      ready = early;
      await early.digests.save();
    } else {
      const digests = await ArchiveDigestFile.open(session.stateDir);
      ready = await readDesired(input, session.state, { ...desiredOpts, digests });
      await digests.save();
    }
    return await work(session, ready);
  } finally {
    await session.close();
  }
}
