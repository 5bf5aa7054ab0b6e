// The mutation lock: at most one thinlayer process changes a state dir (appends events, touches the
// kernel) at a time. A holder that died (killed, power cut) leaves its lock behind; the next process
// sees the pid is gone, or now belongs to a process started at another time or before another boot,
// and takes the lock over.
//
// Layout: `lock` is a directory holding one file, `holder-<token>.json`, with the holder's pid,
// command, start time, boot id and a random token. Two atomic steps make every race safe:
//   - Acquire: build a private directory with the holder file in it, then rename it onto `lock`.
//     rename(2) replaces a missing or EMPTY directory and fails with ENOTEMPTY otherwise, so of
//     many contenders exactly one wins, and the lock appears with its whole content.
//   - Take over: move the dead holder's file out of `lock` by its name. The token makes the name
//     unique, so the move succeeds for exactly one taker and only while that very holder's lock is
//     in place; a taker that judged an older holder dead can never remove a newer one's file.
//     `lock` is then empty and the contenders race to rename onto it as above. The file moves to
//     `lock-dead.json`, where whoever wins next finds it and reports it as `tookOverFrom`.
// (A plain `lock` file with O_EXCL needs "delete it if it is still the stale one", which no file
// operation does atomically: a slow taker can delete a live successor's lock.)
//
// Fairness: a holder that takes the lock again and again (the snapshotter under steady load opens a
// session per burst of calls) could starve a waiter that polls. So a waiter announces itself, once
// the lock is found held by a live process, with a file in `lock-waiters/` (its own name, written
// whole, removed when it stops waiting). A holder that yields (`yieldToWaiters`) ends its session
// at its next boundary when it sees one (src/snapshotter/session-gate.ts), and does not take the
// lock again while a live waiter is announced. A waiter killed before it could remove its file is
// recognised as dead, like a dead holder, and its file removed.

import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, rmdir, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { StateError, UserError } from '../errors/index.ts';
import { processExists } from '../host/process-exists.ts';
import { writeFileWhole, type StateDir } from './state-dir.ts';

export const LOCK_DIR = 'lock';
export const WAITERS_DIR = 'lock-waiters';
export const LOCK_WAIT_ENV = 'THINLAYER_LOCK_WAIT_MS';
const DEFAULT_WAIT_MS = 3000;
const DEFAULT_POLL_MS = 50;
const HOLDER_FILE = /^holder-[0-9a-f]+\.json$/;
const DEAD_HOLDER_FILE = 'lock-dead.json';

export interface LockHolder {
  pid: number;
  command: string; // e.g. 'apply'
  since: string; // ISO time the lock was taken
  /** Field 22 of /proc/<pid>/stat (clock ticks after boot): tells a reused pid from the holder. */
  startTime?: string;
  /** /proc/sys/kernel/random/boot_id: a holder from before a reboot is dead whatever its pid. */
  bootId?: string;
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
  /** Stops the wait (SIGINT, SIGTERM): acquireLock then rejects with E_LOCK_WAIT_STOPPED. */
  signal?: AbortSignal;
  /** Told once, when the lock is found held by a live process and the wait begins. */
  onWait?: (holder: LockHolder) => void;
  /**
   * Let announced waiters go first: the lock is not taken while another process waits for it (the
   * snapshotter's sessions). Such a process does not announce itself when it waits.
   */
  yieldToWaiters?: boolean;
}

/** The state dir is locked by a live process; `holder` says which. */
export class StateDirLockedError extends StateError {
  constructor(
    readonly stateDir: string,
    readonly holder: LockHolder,
  ) {
    const command = holder.command.startsWith('thinlayer') ? holder.command : `thinlayer ${holder.command}`;
    super(`state dir ${stateDir} is locked by pid ${holder.pid} (${command}) since ${holder.since}; wait for it to finish or stop it`, 'E_LOCKED');
    this.name = 'StateDirLockedError';
  }
  override toJSON() {
    return { ...super.toJSON(), stateDir: this.stateDir, holder: this.holder };
  }
}

export async function acquireLock(stateDir: StateDir, opts: AcquireLockOptions): Promise<Lock> {
  const lockDir = stateDir.path(LOCK_DIR);
  const waitMs = opts.waitMs ?? waitFromEnv();
  const pollMs = opts.pollMs ?? DEFAULT_POLL_MS;
  const deadline = Date.now() + waitMs;

  const holder = await describeThisProcess(opts.command);
  const holderFile = `holder-${randomBytes(12).toString('hex')}.json`;
  const draft = stateDir.path(`.lock-new-${process.pid}-${randomBytes(6).toString('hex')}`);
  await writeDraft(draft, holderFile, holder);
  let held = false;
  let waitingFor: LockHolder | null = null;
  let quickRetries = 0;
  let announced: string | null = null;
  try {
    for (;;) {
      if (opts.signal?.aborted) throw stoppedWaiting(stateDir, waitingFor);
      if (opts.yieldToWaiters) {
        const waiter = await liveWaiter(stateDir);
        if (waiter !== null) {
          const remaining = deadline - Date.now();
          if (remaining <= 0) throw new StateDirLockedError(stateDir.root, waiter);
          await pause(Math.min(pollMs, remaining), opts.signal, stateDir, waiter);
          continue;
        }
      }
      if (await renameOntoEmpty(draft, lockDir)) {
        held = true;
        const lock = new HeldLock(path.join(lockDir, holderFile), holder);
        try {
          lock.tookOverFrom = await takeDeadHolderRecord(stateDir);
        } catch (e) {
          await lock.release(); // a lock no caller knows of would block everyone until this process exits
          throw e;
        }
        await sweepLeftovers(stateDir).catch(() => undefined); // housekeeping only
        return lock;
      }
      const current = await readHolderFile(lockDir);
      if (current === null) {
        // No holder file, yet `lock` is not empty: either a holder released it a moment ago (try
        // again at once, a few times), or something that is not a holder file sits there, which no
        // thinlayer will ever remove. Then wait like for a live holder, and name it at the deadline.
        const strays = await strayEntries(lockDir);
        if (strays.length === 0 && quickRetries++ < 3) continue;
        if (deadline - Date.now() <= 0) {
          if (strays.length === 0) continue; // gone between the rename and the listing: try again
          throw new StateError(
            `${lockDir} holds ${strays.map((n) => JSON.stringify(n)).join(', ')}, which is not a thinlayer lock holder, so the lock can never be taken; remove it if no thinlayer runs`,
            'E_LOCK_BROKEN',
          );
        }
        await pause(Math.min(pollMs, deadline - Date.now()), opts.signal, stateDir, waitingFor);
        continue;
      }
      quickRetries = 0;
      if (!(await isLockHolderAlive(current.holder))) {
        await moveDeadHolderAside(stateDir, path.join(lockDir, current.name));
        continue;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new StateDirLockedError(stateDir.root, current.holder!);
      // Announced once; a failed announcement (a full disk) only costs this waiter its priority.
      if (announced === null && !opts.yieldToWaiters) announced = await announceWaiter(stateDir, holder).catch(() => '');
      if (waitingFor === null || waitingFor.pid !== current.holder!.pid) {
        waitingFor = current.holder!;
        opts.onWait?.(waitingFor);
      }
      await pause(Math.min(pollMs, remaining), opts.signal, stateDir, waitingFor);
    }
  } finally {
    if (!held) await rm(draft, { recursive: true, force: true });
    if (announced) await unlink(announced).catch(ignoreCode('ENOENT'));
  }
}

/** Writes this waiter's file into `lock-waiters/` (whole: a dot-name renamed into place); its path. */
async function announceWaiter(stateDir: StateDir, holder: LockHolder): Promise<string> {
  await mkdir(stateDir.path(WAITERS_DIR), { mode: 0o700 }).catch(ignoreCode('EEXIST'));
  const token = randomBytes(12).toString('hex');
  const rel = `${WAITERS_DIR}/waiter-${token}.json`;
  await writeFileWhole(stateDir, rel, `${JSON.stringify(holder)}\n`);
  return stateDir.path(rel);
}

const WAITER_FILE = /^waiter-[0-9a-f]+\.json$/;

/**
 * A live process announced as waiting for the lock, or null. Files of waiters that died are removed
 * (each has a name of its own, so only that waiter's file goes).
 */
export async function liveWaiter(stateDir: StateDir): Promise<LockHolder | null> {
  let names: string[];
  try {
    names = await readdir(stateDir.path(WAITERS_DIR));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
  for (const name of names.filter((n) => WAITER_FILE.test(n))) {
    const file = path.join(stateDir.path(WAITERS_DIR), name);
    const found = await readHolderAt(file).catch(() => null);
    if (found === null) continue; // gone a moment ago
    if (found.holder !== null && (await isLockHolderAlive(found.holder))) return found.holder;
    // Dead, or not a waiter's content: no one waits behind this name.
    await unlink(file).catch(ignoreCode('ENOENT'));
  }
  return null;
}

/** The names in `lock` that are not holder files. */
async function strayEntries(lockDir: string): Promise<string[]> {
  try {
    return (await readdir(lockDir)).filter((n) => !HOLDER_FILE.test(n));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return [];
    throw e;
  }
}

async function pause(ms: number, signal: AbortSignal | undefined, stateDir: StateDir, waitingFor: LockHolder | null): Promise<void> {
  try {
    await sleep(Math.max(ms, 1), undefined, { signal });
  } catch (e) {
    if (signal?.aborted) throw stoppedWaiting(stateDir, waitingFor);
    throw e;
  }
}

function stoppedWaiting(stateDir: StateDir, holder: LockHolder | null): StateError {
  const whom = holder ? ` held by pid ${holder.pid} (${holder.command})` : '';
  return new StateError(`stopped while waiting for the lock of state dir ${stateDir.root}${whom}: nothing was changed`, 'E_LOCK_WAIT_STOPPED');
}

/** Who holds the lock (for status displays); null when unlocked or its file is unreadable. */
export async function readLockHolder(stateDir: StateDir): Promise<LockHolder | null> {
  return (await readHolderFile(stateDir.path(LOCK_DIR)))?.holder ?? null;
}

/**
 * Whether the holder's process still runs: the pid exists, is not a zombie, started when the holder
 * did, and this is the boot it started in.
 */
export async function isLockHolderAlive(holder: LockHolder | null): Promise<boolean> {
  if (holder === null || !Number.isSafeInteger(holder.pid) || holder.pid <= 0) return false;
  if (holder.bootId !== undefined) {
    const bootId = await readBootId();
    if (bootId !== undefined && bootId !== holder.bootId) return false;
  }
  if (!processExists(holder.pid)) return false;
  const stat = await readProcStat(holder.pid);
  // No /proc entry although kill found the pid: it exited a moment ago, or /proc is not mounted.
  // Call it alive; the next poll will know better.
  if (stat === undefined) return true;
  if (stat.state === 'Z' || stat.state === 'X') return false; // exited, not yet reaped
  return holder.startTime === undefined || stat.startTime === holder.startTime;
}

class HeldLock implements Lock {
  #released = false;
  readonly #file: string;
  tookOverFrom?: LockHolder;
  constructor(
    file: string,
    readonly holder: LockHolder,
  ) {
    this.#file = file;
  }

  /**
   * Removes this holder's file, by its unique name, so it can never remove a successor's. Idempotent;
   * quiet when someone (wrongly judging this process dead) took the lock over already.
   */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    await unlink(this.#file).catch(ignoreCode('ENOENT'));
    // Tidy up: an empty `lock` means unlocked anyway, and a contender may have renamed onto it already.
    await rmdir(path.dirname(this.#file)).catch(ignoreCode('ENOENT', 'ENOTEMPTY', 'EEXIST'));
  }
}

/** This process as a lock holder (or a holder record: src/events/holders.ts) would name it. */
export async function describeThisProcess(command: string): Promise<LockHolder> {
  const holder: LockHolder = { pid: process.pid, command, since: new Date().toISOString() };
  const startTime = (await readProcStat(process.pid))?.startTime;
  if (startTime !== undefined) holder.startTime = startTime;
  const bootId = await readBootId();
  if (bootId !== undefined) holder.bootId = bootId;
  return holder;
}

async function writeDraft(draft: string, holderFile: string, holder: LockHolder): Promise<void> {
  await mkdir(draft, { mode: 0o700 });
  const handle = await open(path.join(draft, holderFile), fsc.O_WRONLY | fsc.O_CREAT | fsc.O_EXCL | fsc.O_NOFOLLOW, 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(holder)}\n`, 'utf8');
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** rename(draft, lockDir): true when it took the lock, false when `lock` holds a holder file. */
async function renameOntoEmpty(draft: string, lockDir: string): Promise<boolean> {
  try {
    await rename(draft, lockDir);
    return true;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    if (code === 'ENOTDIR') {
      throw new StateError(`${lockDir} is not a directory; thinlayer keeps its lock there. Remove it if no thinlayer runs`, 'E_LOCK_BROKEN');
    }
    throw e;
  }
}

interface HolderFile {
  name: string;
  raw: string;
  mtime: Date;
  holder: LockHolder | null; // null when the content does not parse
}

/** The holder file inside `lock`, or null when there is none (unlocked). */
async function readHolderFile(lockDir: string): Promise<HolderFile | null> {
  let names: string[];
  try {
    names = await readdir(lockDir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    throw e;
  }
  for (const name of names.filter((n) => HOLDER_FILE.test(n))) {
    const found = await readHolderAt(path.join(lockDir, name));
    if (found !== null) return found; // else released or taken over just now
  }
  return null;
}

async function readHolderAt(file: string): Promise<HolderFile | null> {
  let handle: FileHandle;
  try {
    handle = await open(file, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const mtime = (await handle.stat()).mtime;
    const raw = await handle.readFile('utf8');
    return { name: path.basename(file), raw, mtime, holder: parseHolder(raw) };
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
  const holder: LockHolder = { pid: v.pid as number, command: v.command, since: v.since };
  for (const key of ['startTime', 'bootId'] as const) {
    if (v[key] === undefined) continue;
    if (typeof v[key] !== 'string') return null;
    holder[key] = v[key] as string;
  }
  return holder;
}

function unreadableHolder(file: HolderFile): LockHolder {
  return { pid: 0, command: `(unreadable lock file: ${JSON.stringify(file.raw.slice(0, 60))})`, since: file.mtime.toISOString() };
}

/**
 * Moves a dead holder's file out of `lock` to where the next winner will find it. Quiet when another
 * taker moved it first (ENOENT). Overwriting an older record loses nothing: the holder it names
 * never got the lock reported, because it died before it could.
 */
async function moveDeadHolderAside(stateDir: StateDir, holderPath: string): Promise<void> {
  await rename(holderPath, stateDir.path(DEAD_HOLDER_FILE)).catch(ignoreCode('ENOENT'));
}

/** Only the lock holder calls this, so no one else reads or removes the record meanwhile. */
async function takeDeadHolderRecord(stateDir: StateDir): Promise<LockHolder | undefined> {
  const file = stateDir.path(DEAD_HOLDER_FILE);
  const record = await readHolderAt(file);
  if (record === null) return undefined;
  await unlink(file);
  return record.holder ?? unreadableHolder(record);
}

const LEFTOVER = /^\.lock-new-(\d+)-[0-9a-f]+$/;

/** Deletes drafts left by processes that died before renaming them onto `lock`. */
async function sweepLeftovers(stateDir: StateDir): Promise<void> {
  for (const name of await readdir(stateDir.root)) {
    const match = LEFTOVER.exec(name);
    if (!match || Number(match[1]) === process.pid) continue;
    if (!processExists(Number(match[1]))) await rm(stateDir.path(name), { recursive: true, force: true });
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

async function readBootId(): Promise<string | undefined> {
  try {
    return (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim() || undefined;
  } catch {
    return undefined;
  }
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

function ignoreCode(...codes: string[]) {
  return (e: unknown) => {
    if (!codes.includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
  };
}
