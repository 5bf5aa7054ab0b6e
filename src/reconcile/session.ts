// A session: the state dir opened, the kernel chosen, the log replayed into the projection, and (for
// commands that mutate) the lock held. Everything a command does happens inside one session.

import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStateDir, type StateDir } from '../events/state-dir.ts';
import { InternalError, inFile } from '../errors/index.ts';
import { EventLog, EVENT_LOG_FILE } from '../events/log.ts';
import { acquireLock, type Lock, type LockHolder } from '../events/lock.ts';
import { SnapshotStore } from '../events/snapshot.ts';
import { replay } from '../events/replay.ts';
import type { ThinlayerEvent, ThinlayerEventBody } from '../events/types.ts';
import type { KernelPort } from '../kernel/port.ts';
import { openKernel, type BackendChoice } from '../kernel/select.ts';
import { foldInto, initialState, ownCopy, PROJECTION_SCHEMA, type EngineState } from '../lifecycle/projection.ts';
import { CrashPoints } from './crash-points.ts';
import { newIdentity } from '../domain/names.ts';
import { countKernelCallsFromEnv } from '../kernel/counting.ts';
import type { Reporter } from '../messages/port.ts';

export interface SessionOptions {
  stateDir: string;
  backend: BackendChoice;
  reporter: Reporter;
  /** Take the lock and allow appends (apply, up, down, destroy); read-only otherwise. */
  mutate: boolean;
  command: string;
  /** Use this kernel instead of choosing one (tests, the library API). */
  kernel?: KernelPort;
  lockWaitMs?: number;
  /** Stops a wait for the lock (SIGINT, SIGTERM). */
  signal?: AbortSignal;
  /** Count crash points across sessions (a long-running process opens many: the snapshotter). */
  crash?: CrashPoints;
}

/** The kernel a command runs on, chosen by the backend option; why the choice fell as it did goes to the reporter. */
export async function openSessionKernel(backend: BackendChoice, stateDir: StateDir, reporter: Reporter, simDir?: () => Promise<string>): Promise<KernelPort> {
  const chosen = await openKernel(backend, stateDir, simDir);
  if (chosen.notice) reporter.notify({ code: 'backend.notice', backend: chosen.kernel.kind, text: chosen.notice });
  return chosen.kernel;
}

export class Session {
  private constructor(
    readonly stateDir: StateDir,
    readonly kernel: KernelPort,
    /** null: a read-only session on a state dir with no log yet (nothing recorded). */
    private readonly log: EventLog | null,
    private readonly store: SnapshotStore<EngineState>,
    private readonly lock: Lock | null,
    readonly crash: CrashPoints,
    public state: EngineState,
  ) {}

  /** The sequence the stored snapshot already covers (-1: none fits), so close() saves only when there is news. */
  private replayedSeq = -1;
  /** The throwaway directory of a read-only session's empty simulated kernel, removed on close. */
  private scratch: string | null = null;

  static async open(opts: SessionOptions): Promise<Session> {
    // A read-only session creates, chmods and writes nothing in the state dir (openStateDir readOnly).
    const stateDir = await openStateDir(opts.stateDir, { readOnly: !opts.mutate });
    const crash = opts.crash ?? new CrashPoints();
    let scratch: string | null = null;
    const onWait = (h: LockHolder) => opts.reporter.notify({ code: 'lock.waiting', pid: h.pid, command: h.command, since: h.since });
    const lock = opts.mutate ? await acquireLock(stateDir, { command: opts.command, waitMs: opts.lockWaitMs, signal: opts.signal, onWait }).catch(inFile(stateDir.path('lock'))) : null;
    try {
      if (lock?.tookOverFrom) opts.reporter.notify({ code: 'lock.took-over', pid: lock.tookOverFrom.pid, command: lock.tookOverFrom.command });
      // A simulated kernel that was never started has nothing in it: read-only, it is made in a
      // throwaway directory rather than in the state dir.
      const simDir = !opts.mutate && !existsSync(stateDir.path('sim')) ? async () => (scratch = await mkdtemp(path.join(tmpdir(), 'thinlayer-sim-'))) : undefined;
      const kernel = opts.kernel ?? (await openSessionKernel(opts.backend, stateDir, opts.reporter, simDir));
      const logFile = stateDir.path(EVENT_LOG_FILE);
      const log = opts.mutate ? await EventLog.open(stateDir, { exclusive: lock !== null }).catch(inFile(logFile)) : await EventLog.openForReading(stateDir).catch(inFile(logFile));
      const store = await SnapshotStore.open<EngineState>(stateDir);
      const session = new Session(stateDir, crash.wrapKernel(countKernelCallsFromEnv(kernel)), log, store, lock, crash, initialState());
      session.scratch = scratch;
      if (opts.mutate) {
        const torn = await log!.repairTornTail();
        if (torn) {
          // A crash cut the last line short. Nothing in it was acted upon durably, since every
          // kernel step waits for its intent to be on disk first; record what was dropped.
          opts.reporter.notify({ code: 'recovery.torn-tail', bytes: torn.bytes });
          await session.append([{ type: 'recovery.note', kind: 'torn-tail', detail: { offset: torn.offset, bytes: torn.bytes, text: torn.text.slice(0, 200) } }], { fold: false });
        }
      }
      // The session owns its state (a fresh copy of the snapshot's), so it folds in place.
      if (log) {
        const replayed = await replay(log, store, (state, e) => (foldInto(state, e), state), () => ownCopy(initialState()), PROJECTION_SCHEMA);
        session.state = replayed.state;
        session.replayedSeq = replayed.fromSnapshot && replayed.replayed === 0 ? replayed.seq : -1;
      }
      // The state dir's identity, given once, before anything it names is made (src/domain/names.ts).
      if (opts.mutate && session.state.identity === null) {
        await session.append([{ type: 'state.identity', id: newIdentity(), ...(session.state.lastSeq > 0 ? { legacy: true } : {}) }]);
      }
      return session;
    } catch (e) {
      await lock?.release();
      if (scratch) await rm(scratch, { recursive: true, force: true });
      throw e;
    }
  }

  /**
   * Append events and fold them into the projection. Durable when the promise resolves, unless
   * `durable: false` (see AppendOptions: then the next durable append, or close, makes them so).
   */
  async append(bodies: ThinlayerEventBody[], opts: { fold?: boolean; durable?: boolean } = {}): Promise<ThinlayerEvent[]> {
    if (!this.log || !this.lock) throw new InternalError('an append in a read-only session');
    const what = bodies.map((b) => ('op' in b ? `${b.type} ${b.op}` : b.type)).join(', ');
    this.crash.boundary(`before append ${what}`);
    const events = await this.log.append(bodies, { durable: opts.durable }).catch(inFile(this.stateDir.path(EVENT_LOG_FILE)));
    this.crash.boundary(`after append ${what}`);
    if (opts.fold !== false) for (const e of events) foldInto(this.state, e);
    return events;
  }

  async close(): Promise<void> {
    try {
      if (this.lock && this.log && this.state.lastSeq > 0 && this.state.lastSeq !== this.replayedSeq) {
        const offset = this.state.lastSeq === this.log.lastSeq ? this.log.endOffset : undefined;
        // Without the digest of the line it ends at, a snapshot is never trusted (replay.ts): save none.
        const lineDigest = offset !== undefined ? await this.log.lineDigestEndingAt(offset).catch(() => null) : null;
        if (lineDigest) await this.store.save(this.state.lastSeq, this.state, PROJECTION_SCHEMA, offset, lineDigest).catch(() => undefined);
      }
      await this.log?.close();
      await this.kernel.close();
    } finally {
      await this.lock?.release();
      if (this.scratch) await rm(this.scratch, { recursive: true, force: true });
    }
  }
}
