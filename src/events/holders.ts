// The long-running holders of a state dir: a snapshotter and a watch. Each records itself in
// `holders/<kind>.json` (pid, command, start time, boot id, and the snapshotter's socket) for as long
// as it runs, so that other commands can see it: a second snapshotter is refused at start, and
// `destroy` and `down` refuse to take the pool from under a running one, or, given --force, ask it
// to stop and wait until it has.
//
// Why these races are safe:
//   - A holder claims its record while it holds the state dir's lock (`claimHolder`), and `destroy`
//     and `down` look at the records under the lock too, so "is one running?" and "I run now" never
//     interleave: of two snapshotters starting together, the second to get the lock sees the first.
//   - A record is written whole (a private temporary file renamed over the name) and read with
//     O_NOFOLLOW; a symlink in its place is refused (E_STATE_PATH), as every symlink in the state
//     dir is (state-dir.ts), so no record is ever read or written through one.
//   - A record is alive only while its process is the one that wrote it: same pid, same start time
//     (/proc/<pid>/stat), same boot (isLockHolderAlive, as the lock judges its holder). A record left
//     by a killed holder, or whose pid was reused, is stale: ignored, and replaced by the next claim.
//   - A stop request (`holders/<kind>.stop.json`) names the holder it is for by pid and start time,
//     so a request left behind never stops a later holder of the same kind. The holder polls for it
//     (a stat every STOP_POLL_MS) and stops as after SIGTERM: the work under way finishes and is
//     recorded, then it removes its record and exits 0.

import { constants as fsc } from 'node:fs';
import { mkdir, open, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { StateError, type ErrorCode } from '../errors/index.ts';
import { describeThisProcess, isLockHolderAlive, type LockHolder } from './lock.ts';
import { writeFileWhole, type StateDir } from './state-dir.ts';

export const HOLDERS_DIR = 'holders';
export const HOLDER_KINDS = ['snapshotter', 'watch'] as const;
export type HolderKind = (typeof HOLDER_KINDS)[number];
export const HOLDER_STOP_WAIT_ENV = 'THINLAYER_HOLDER_STOP_WAIT_MS';
const DEFAULT_STOP_WAIT_MS = 60_000;
const STOP_POLL_MS = 200;

export interface HolderRecord extends LockHolder {
  kind: HolderKind;
  /** The snapshotter's socket. */
  socket?: string;
  /** The manifest a watch follows. */
  manifest?: string;
}

/** Who asked a holder to stop, and which holder (pid and start time) the request is for. */
export interface StopRequest {
  pid: number;
  startTime?: string;
  by: string;
  byPid: number;
  at: string;
}

const recordName = (kind: HolderKind) => `${HOLDERS_DIR}/${kind}.json`;
const stopName = (kind: HolderKind) => `${HOLDERS_DIR}/${kind}.stop.json`;

/** A holder of this kind runs already (a second snapshotter), or one stands in the way of `command`. */
export class HolderRunningError extends StateError {
  constructor(
    readonly stateDir: string,
    readonly holders: HolderRecord[],
    message: string,
    code: ErrorCode = 'E_HELD',
  ) {
    super(message, code);
    this.name = 'HolderRunningError';
  }
  override toJSON() {
    return { ...super.toJSON(), stateDir: this.stateDir, holders: this.holders };
  }
}

/** "snapshotter pid 123 (socket /run/x.sock) since 2026-…": one holder, as messages name it. */
export function describeHolder(h: HolderRecord): string {
  const extra = h.socket ? `, socket ${h.socket}` : h.manifest ? `, following ${h.manifest}` : '';
  return `${h.kind} pid ${h.pid} (${h.command}${extra}) since ${h.since}`;
}

/** How to stop a holder: its systemd unit when it runs in one, else `kill PID` (SIGTERM lets it finish). */
export async function howToStop(h: HolderRecord): Promise<string> {
  const unit = await systemdUnitOf(h.pid);
  return unit ? `systemctl stop ${unit}` : `kill ${h.pid}`;
}

/** The holder of `kind` recorded in the state dir when its process still runs; null otherwise. */
export async function liveHolder(stateDir: StateDir, kind: HolderKind): Promise<HolderRecord | null> {
  const record = await readRecord(stateDir, recordName(kind), parseRecord);
  if (record === null || record.kind !== kind) return null;
  return (await isLockHolderAlive(record)) ? record : null;
}

/** Every live holder of the state dir (the snapshotter first). */
export async function liveHolders(stateDir: StateDir): Promise<HolderRecord[]> {
  const found: HolderRecord[] = [];
  for (const kind of HOLDER_KINDS) {
    const h = await liveHolder(stateDir, kind);
    if (h) found.push(h);
  }
  return found;
}

export interface HolderClaim {
  readonly record: HolderRecord;
  /** Calls `onStop` (once) when someone asks this holder to stop; the poll ends with release(). */
  watchForStop(onStop: (request: StopRequest) => void): void;
  /** Removes the record (and a stop request for this holder), when they are still this holder's. */
  release(): Promise<void>;
}

/**
 * Records this process as the state dir's holder of `kind`. The caller holds the state dir's lock.
 * A live holder of the same kind is refused (E_HELD, naming it); a stale record is replaced.
 */
export async function claimHolder(stateDir: StateDir, kind: HolderKind, extra: { socket?: string; manifest?: string } = {}): Promise<HolderClaim> {
  const running = await liveHolder(stateDir, kind);
  if (running && running.pid !== process.pid) {
    throw new HolderRunningError(
      stateDir.root,
      [running],
      `another ${kind} serves state dir ${stateDir.root}: ${describeHolder(running)}; one ${kind} a state dir (stop it first: ${await howToStop(running)})`,
    );
  }
  const record: HolderRecord = { ...(await describeThisProcess(`thinlayer ${kind}`)), kind, ...extra };
  await mkdir(stateDir.path(HOLDERS_DIR), { mode: 0o700 }).catch((e) => {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
  });
  // A stop request for an earlier holder of this kind is moot now.
  await unlink(stateDir.path(stopName(kind))).catch(() => undefined);
  await writeFileWhole(stateDir, recordName(kind), `${JSON.stringify(record)}\n`, { sync: true });
  return new Claim(stateDir, record);
}

class Claim implements HolderClaim {
  #timer: NodeJS.Timeout | null = null;
  #released = false;
  constructor(
    private readonly stateDir: StateDir,
    readonly record: HolderRecord,
  ) {}

  watchForStop(onStop: (request: StopRequest) => void): void {
    if (this.#timer || this.#released) return;
    let told = false;
    let busy = false;
    this.#timer = setInterval(() => {
      if (told || busy) return;
      busy = true;
      this.#stopRequest()
        .then((request) => {
          if (request && !told && !this.#released) {
            told = true;
            onStop(request);
          }
        })
        .catch(() => undefined) // a failed look is tried again at the next poll
        .finally(() => (busy = false));
    }, STOP_POLL_MS);
    this.#timer.unref();
  }

  async #stopRequest(): Promise<StopRequest | null> {
    const request = await readRecord(this.stateDir, stopName(this.record.kind), parseStop);
    return request && isFor(request, this.record) ? request : null;
  }

  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    if (this.#timer) clearInterval(this.#timer);
    const mine = await readRecord(this.stateDir, recordName(this.record.kind), parseRecord).catch(() => null);
    if (mine && mine.pid === this.record.pid && mine.startTime === this.record.startTime) {
      await unlink(this.stateDir.path(recordName(this.record.kind))).catch(() => undefined);
    }
    const request = await readRecord(this.stateDir, stopName(this.record.kind), parseStop).catch(() => null);
    if (request && isFor(request, this.record)) await unlink(this.stateDir.path(stopName(this.record.kind))).catch(() => undefined);
  }
}

function isFor(request: StopRequest, holder: HolderRecord): boolean {
  return request.pid === holder.pid && request.startTime === holder.startTime;
}

/** Asks `holder` to stop (it polls for the request); `by` is the command asking. */
export async function requestStop(stateDir: StateDir, holder: HolderRecord, by: string): Promise<void> {
  const request: StopRequest = { pid: holder.pid, by, byPid: process.pid, at: new Date().toISOString() };
  if (holder.startTime !== undefined) request.startTime = holder.startTime;
  await writeFileWhole(stateDir, stopName(holder.kind), `${JSON.stringify(request)}\n`, { sync: true });
}

/**
 * Waits until `holder` has exited (its process gone, or its record removed or replaced), at most
 * `waitMs` ($THINLAYER_HOLDER_STOP_WAIT_MS, else 60 s); then fails with E_HOLDER_RUNNING naming it.
 */
export async function waitForExit(stateDir: StateDir, holder: HolderRecord, opts: { waitMs?: number; signal?: AbortSignal; command: string }): Promise<void> {
  const waitMs = opts.waitMs ?? stopWaitFromEnv();
  const deadline = Date.now() + waitMs;
  for (;;) {
    const now = await liveHolder(stateDir, holder.kind);
    if (!now || now.pid !== holder.pid || now.startTime !== holder.startTime) {
      // A holder in this very process (a program embedding watch) has stopped once its record is gone.
      if (holder.pid === process.pid || !(await isLockHolderAlive(holder))) return;
      // The record is gone but the process still runs: it is finishing its exit.
    }
    if (Date.now() >= deadline) {
      throw new HolderRunningError(
        stateDir.root,
        [holder],
        `${opts.command}: asked ${describeHolder(holder)} to stop, and it still runs after ${waitMs} ms; nothing was changed (stop it: ${await howToStop(holder)})`,
        'E_HOLDER_RUNNING',
      );
    }
    if (opts.signal?.aborted)
      throw new StateError(`${opts.command}: stopped while waiting for ${describeHolder(holder)} to stop; nothing was changed`, 'E_HOLDER_WAIT_STOPPED');
    await sleep(50, undefined, { signal: opts.signal }).catch(() => undefined);
  }
}

/** The refusal of `command` (destroy, down) while holders run, naming each and how to stop it. */
export async function heldError(stateDir: StateDir, holders: HolderRecord[], command: string, why: string): Promise<HolderRunningError> {
  const lines = await Promise.all(holders.map(async (h) => `  ${describeHolder(h)}: stop it with \`${await howToStop(h)}\``));
  return new HolderRunningError(
    stateDir.root,
    holders,
    `${command}: ${why}:\n${lines.join('\n')}\nStop ${holders.length > 1 ? 'them' : 'it'} first, or run \`thinlayer ${command} --force\` to ask ${holders.length > 1 ? 'them' : 'it'} to stop and wait until ${holders.length > 1 ? 'they have' : 'it has'}.`,
  );
}

/** The file parsed; null when it is missing, a symlink (never followed) or not what it should be. */
async function readRecord<T>(stateDir: StateDir, rel: string, parse: (v: Record<string, unknown>) => T | null): Promise<T | null> {
  let handle: FileHandle;
  try {
    handle = await open(stateDir.path(rel), fsc.O_RDONLY | fsc.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ELOOP' || code === 'ENOTDIR') return null;
    throw e;
  }
  try {
    if (!(await handle.stat()).isFile()) return null;
    const value: unknown = JSON.parse(await handle.readFile('utf8'));
    return typeof value === 'object' && value !== null ? parse(value as Record<string, unknown>) : null;
  } catch {
    return null; // torn or foreign content: no holder speaks through it
  } finally {
    await handle.close();
  }
}

function parseRecord(v: Record<string, unknown>): HolderRecord | null {
  if (!Number.isSafeInteger(v.pid) || typeof v.command !== 'string' || typeof v.since !== 'string') return null;
  if (!HOLDER_KINDS.includes(v.kind as HolderKind)) return null;
  const r: HolderRecord = { pid: v.pid as number, command: v.command, since: v.since, kind: v.kind as HolderKind };
  for (const key of ['startTime', 'bootId', 'socket', 'manifest'] as const) {
    if (v[key] === undefined) continue;
    if (typeof v[key] !== 'string') return null;
    r[key] = v[key] as string;
  }
  return r;
}

function parseStop(v: Record<string, unknown>): StopRequest | null {
  if (!Number.isSafeInteger(v.pid) || typeof v.by !== 'string' || !Number.isSafeInteger(v.byPid) || typeof v.at !== 'string') return null;
  if (v.startTime !== undefined && typeof v.startTime !== 'string') return null;
  return { pid: v.pid as number, by: v.by, byPid: v.byPid as number, at: v.at, ...(v.startTime !== undefined ? { startTime: v.startTime as string } : {}) };
}

/** The systemd service a process runs in (from /proc/<pid>/cgroup), if any. */
async function systemdUnitOf(pid: number): Promise<string | null> {
  try {
    const text = await readFile(`/proc/${pid}/cgroup`, 'utf8');
    for (const line of text.split('\n')) {
      const unit = line
        .split(':')
        .pop()
        ?.split('/')
        .find((part) => part.endsWith('.service'));
      if (unit) return unit;
    }
  } catch {
    // no /proc: say `kill PID`
  }
  return null;
}

function stopWaitFromEnv(): number {
  const ms = Number(process.env[HOLDER_STOP_WAIT_ENV]);
  return process.env[HOLDER_STOP_WAIT_ENV] && Number.isSafeInteger(ms) && ms >= 0 ? ms : DEFAULT_STOP_WAIT_MS;
}
