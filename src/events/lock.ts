// The mutation lock: at most one thinlayer process changes a state dir (appends events, touches the
// kernel) at a time. The lock is the file `lock` holding its holder's pid, command, start time and a
// random token. A holder that died (killed, power cut) leaves its file behind; the next process sees
// the pid is gone, or now belongs to a process started at another time, and takes the lock over.
//
// The file appears atomically with its whole content: it is written under a private temporary name
// and hard-linked to `lock` (link fails with EEXIST exactly as O_EXCL would), so no one ever reads
// a half-written lock of a live process. Content that does not parse can only be damage, and counts
// as stale.
//
// Taking over a stale lock: rename it to a unique name (only one process can move a given file),
// then check the moved file is the very one judged stale (same inode and bytes, the token making
// the bytes unique). If it is not, a new holder had replaced it in the meantime: link it back.

import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { link, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { StateError, UserError } from '../errors/index.ts';
import type { StateDir } from './state-dir.ts';

export const LOCK_FILE = 'lock';
export const LOCK_WAIT_ENV = 'THINLAYER_LOCK_WAIT_MS';
const DEFAULT_WAIT_MS = 3000;
const DEFAULT_POLL_MS = 50;

export interface LockHolder {
  pid: number;
  command: string; // e.g. 'apply'
  since: string; // ISO time the lock was taken
  /** Field 22 of /proc/<pid>/stat (clock ticks after boot): tells a reused pid from the holder. */
  startTime?: string;
}

export interface Lock {
  release(): Promise<void>;
  readonly holder: LockHolder;
  /** The dead holder whose lock this one replaced, when it was taken over. */
  readonly tookOverFrom?: LockHolder;
}

export interface AcquireLockOptions {
  command: string;
  /** How long to wait for a live holder (default: $THINLAYER_LOCK_WAIT_MS, else 3000 ms). */
  waitMs?: number;
  pollMs?: number;
}

/** The state dir is locked by a live process; `holder` says which. */
export class StateDirLockedError extends StateError {
  constructor(
    readonly stateDir: string,
    readonly holder: LockHolder,
  ) {
    const command = holder.command.startsWith('thinlayer') ? holder.command : `thinlayer ${holder.command}`;
    super(
      `state dir ${stateDir} is locked by pid ${holder.pid} (${command}) since ${holder.since}; wait for it to finish or stop it`,
      'E_LOCKED',
    );
    this.name = 'StateDirLockedError';
  }
  override toJSON() {
    return { ...super.toJSON(), stateDir: this.stateDir, holder: this.holder };
  }
}

export async function acquireLock(stateDir: StateDir, opts: AcquireLockOptions): Promise<Lock> {
  const file = stateDir.path(LOCK_FILE);
  const waitMs = opts.waitMs ?? waitFromEnv();
  const pollMs = opts.pollMs ?? DEFAULT_POLL_MS;
  const deadline = Date.now() + waitMs;

  const holder: LockHolder = { pid: process.pid, command: opts.command, since: new Date().toISOString() };
  const startTime = (await readProcStat(process.pid))?.startTime;
  if (startTime !== undefined) holder.startTime = startTime;
  const content = JSON.stringify({ ...holder, token: randomBytes(12).toString('hex') }) + '\n';

  const draft = stateDir.path(`.lock-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
  const draftIno = await writeDraft(draft, content);
  try {
    let tookOverFrom: LockHolder | undefined;
    for (;;) {
      if (await linkIfAbsent(draft, file)) {
        await sweepLeftovers(stateDir);
        return new HeldLock(file, { ino: draftIno, raw: content }, holder, tookOverFrom);
      }
      const current = await readLockFile(file);
      if (current === null) continue; // released just now: try again at once
      if (!(await isLockHolderAlive(current.holder))) {
        if (await removeStaleLock(stateDir, file, current)) tookOverFrom = current.holder ?? unreadableHolder(current);
        continue;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new StateDirLockedError(stateDir.root, current.holder!);
      await sleep(Math.min(pollMs, remaining));
    }
  } finally {
    await unlink(draft).catch(() => undefined);
  }
}

/** Who holds the lock, as its file says (for status displays); null when unlocked or unreadable. */
export async function readLockHolder(stateDir: StateDir): Promise<LockHolder | null> {
  return (await readLockFile(stateDir.path(LOCK_FILE)))?.holder ?? null;
}

/** Whether the holder's process still runs: the pid exists, is not a zombie, and started when the holder did. */
export async function isLockHolderAlive(holder: LockHolder | null): Promise<boolean> {
  if (holder === null || !Number.isSafeInteger(holder.pid) || holder.pid <= 0) return false;
  try {
    process.kill(holder.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    // EPERM: the process exists but belongs to someone else; it is alive.
  }
  const stat = await readProcStat(holder.pid);
  // No /proc entry although kill found the pid: it exited a moment ago, or /proc is not mounted.
  // Call it alive; the next poll will know better.
  if (stat === undefined) return true;
  if (stat.state === 'Z' || stat.state === 'X') return false; // exited, not yet reaped
  return holder.startTime === undefined || stat.startTime === holder.startTime;
}

class HeldLock implements Lock {
  #released = false;
  constructor(
    private readonly file: string,
    private readonly identity: { ino: number; raw: string },
    readonly holder: LockHolder,
    readonly tookOverFrom?: LockHolder,
  ) {}

  /** Removes the lock file if it is still this lock's (it is, unless someone judged this process dead). Idempotent. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    const current = await readLockFile(this.file);
    if (current !== null && current.ino === this.identity.ino && current.raw === this.identity.raw) {
      await unlink(this.file).catch(ignoreCode('ENOENT'));
    }
  }
}

interface LockFileContent {
  ino: number;
  raw: string;
  mtime: Date;
  holder: LockHolder | null; // null when the content does not parse
}

async function readLockFile(file: string): Promise<LockFileContent | null> {
  let handle;
  try {
    handle = await open(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const st = await handle.stat();
    const raw = await handle.readFile('utf8');
    return { ino: st.ino, raw, mtime: st.mtime, holder: parseHolder(raw) };
  } finally {
    await handle.close();
  }
}

function parseHolder(raw: string): LockHolder | null {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  if (!Number.isSafeInteger(v.pid) || typeof v.command !== 'string' || typeof v.since !== 'string') return null;
  if (v.startTime !== undefined && typeof v.startTime !== 'string') return null;
  const holder: LockHolder = { pid: v.pid as number, command: v.command, since: v.since };
  if (v.startTime !== undefined) holder.startTime = v.startTime as string;
  return holder;
}

function unreadableHolder(lock: LockFileContent): LockHolder {
  return { pid: 0, command: `(unreadable lock file: ${JSON.stringify(lock.raw.slice(0, 60))})`, since: lock.mtime.toISOString() };
}

/** Moves the stale lock aside and deletes it; false when another process got there first. */
async function removeStaleLock(stateDir: StateDir, file: string, judged: LockFileContent): Promise<boolean> {
  const aside = stateDir.path(`.lock-stale-${process.pid}-${randomBytes(6).toString('hex')}`);
  try {
    await rename(file, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
  const moved = await readLockFile(aside);
  if (moved !== null && moved.ino === judged.ino && moved.raw === judged.raw) {
    await unlink(aside);
    return true;
  }
  // The file moved was a live holder's, created after the stale one was judged: give it back. If
  // a third process linked a new lock in this instant, nothing can undo the double grant; the token
  // check in release() at least keeps either holder from deleting the other's file.
  await link(aside, file).catch(ignoreCode('EEXIST'));
  await unlink(aside);
  return false;
}

async function writeDraft(path: string, content: string): Promise<number> {
  const handle = await open(path, fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(content, 'utf8');
    await handle.datasync();
    return (await handle.stat()).ino;
  } finally {
    await handle.close();
  }
}

async function linkIfAbsent(from: string, to: string): Promise<boolean> {
  try {
    await link(from, to);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
}

const LEFTOVER = /^\.lock-(?:stale-)?(\d+)-[0-9a-f]+(?:\.tmp)?$/;

/** Deletes drafts and moved-aside locks left by processes that died between two steps. */
async function sweepLeftovers(stateDir: StateDir): Promise<void> {
  for (const name of await readdir(stateDir.root)) {
    const match = LEFTOVER.exec(name);
    if (!match || Number(match[1]) === process.pid) continue;
    if (await isPidGone(Number(match[1]))) await unlink(stateDir.path(name)).catch(ignoreCode('ENOENT'));
  }
}

async function isPidGone(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** State (field 3) and start time (field 22) from /proc/<pid>/stat; undefined when unreadable. */
async function readProcStat(pid: number): Promise<{ state: string; startTime: string } | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // Field 2 is the command name in parentheses and may itself hold spaces or ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0];
  const startTime = fields[22 - 3];
  return state && startTime ? { state, startTime } : undefined;
}

function waitFromEnv(): number {
  const raw = process.env[LOCK_WAIT_ENV];
  if (raw === undefined || raw === '') return DEFAULT_WAIT_MS;
  const ms = Number(raw);
  if (!Number.isSafeInteger(ms) || ms < 0) {
    throw new UserError(`${LOCK_WAIT_ENV}=${JSON.stringify(raw)} is not a number of milliseconds`, {
      path: LOCK_WAIT_ENV,
      expected: 'a whole number of milliseconds, 0 or more',
    });
  }
  return ms;
}

function ignoreCode(code: string) {
  return (e: unknown) => {
    if ((e as NodeJS.ErrnoException).code !== code) throw e;
  };
}
