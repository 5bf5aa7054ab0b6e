// A session: the state dir opened, the kernel chosen, the log replayed into the projection, and (for
// commands that mutate) the lock held. Everything a command does happens inside one session.

import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStateDir, type StateDir } from '../events/state-dir.ts';
import { InternalError, StateError, inFile } from '../errors/index.ts';
import { EventLog, EVENT_LOG_FILE } from '../events/log.ts';
import { acquireLock, type Lock, type LockHolder } from '../events/lock.ts';
import { SnapshotStore } from '../events/snapshot.ts';
import { replay } from '../events/replay.ts';
import type { ThinlayerEvent, ThinlayerEventBody } from '../model/events.ts';
import type { KernelPort } from '../kernel/kernel-port.ts';
import { chooseBackend, hostFacts, openKernel, refuseOtherBackend, type BackendChoice, type HostFacts } from '../kernel/select.ts';
import { initialState, PROJECTION_SCHEMA } from '../lifecycle/projection.ts';
import type { EngineState } from '../model/engine-state.ts';
import { foldInto, ownCopy } from '../lifecycle/fold.ts';
import { CrashPoints } from './crash-points.ts';
import { newIdentity } from '../domain/names.ts';
import { countKernelCallsFromEnv } from '../kernel/counting.ts';
import type { Reporter } from '../messages/message-port.ts';

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
  /** Let processes waiting for the lock take it first (the snapshotter: src/events/lock.ts, fairness). */
  yieldLock?: boolean;
  /**
   * Where an earlier session of this process left its projection (resumePoint()): when the log
   * bears it out (the line it ends at is still there, with the same digest), only the events after
   * it are read, so a session opens in time proportional to what changed, not to the whole state.
   * The state object is taken over and folded in place.
   */
  resume?: ResumePoint | null;
}

export interface ResumePoint {
  state: EngineState;
  seq: number;
  offset: number;
  lineDigest: string | null;
}

/** The projection at `r`, brought up to the log's end; null when the log does not bear `r` out. */
async function resumeFrom(log: EventLog, r: ResumePoint): Promise<EngineState | null> {
  if (r.seq !== r.state.lastSeq || r.seq > log.lastSeq) return null;
  if (r.seq > 0 && (r.lineDigest === null || (await log.lineDigestEndingAt(r.offset)) !== r.lineDigest)) return null;
  if (r.seq === 0 && r.offset !== 0) return null;
  for (const e of await log.readFrom(r.seq, r.offset)) foldInto(r.state, e);
  return r.state;
}

/** The kernel a command runs on, chosen by the backend option; why the choice fell as it did goes to the reporter. */
export async function openSessionKernel(
  backend: BackendChoice,
  stateDir: StateDir,
  reporter: Reporter,
  simDir?: () => Promise<string>,
  facts?: HostFacts,
): Promise<KernelPort> {
  const chosen = await openKernel(backend, stateDir, simDir, facts);
  if (chosen.notice) reporter.notify({ code: 'backend.notice', backend: chosen.kernel.kind, text: chosen.notice });
  return chosen.kernel;
}

export class Session {
  private constructor(
    readonly stateDir: StateDir,
    /** null: a read-only session on a state dir with no log yet (nothing recorded). */
    private readonly log: EventLog | null,
    private readonly store: SnapshotStore<EngineState>,
    private readonly lock: Lock | null,
    readonly crash: CrashPoints,
    public state: EngineState,
    private readonly reporter: Reporter,
  ) {}

  #kernel: KernelPort | null = null;
  /** The kernel, opened once the log is read and its recorded backend agrees with the one chosen. */
  get kernel(): KernelPort {
    if (!this.#kernel) throw new InternalError('the kernel of a session used before it was opened');
    return this.#kernel;
  }

  /** The sequence the stored snapshot already covers (-1: none fits), so close() saves only when there is news. */
  private replayedSeq = -1;
  /** close() could not save snapshot.json (reported as state.snapshot-save-failed): a long-running caller tries again soon. */
  saveFailed = false;
  /** The throwaway directory of a read-only session's empty simulated kernel, removed on close. */
  private scratch: string | null = null;

  static async open(opts: SessionOptions): Promise<Session> {
    // A read-only session creates, chmods and writes nothing in the state dir (openStateDir readOnly).
    const stateDir = await openStateDir(opts.stateDir, { readOnly: !opts.mutate });
    const crash = opts.crash ?? new CrashPoints();
    const onWait = (h: LockHolder) => opts.reporter.notify({ code: 'lock.waiting', pid: h.pid, command: h.command, since: h.since });
    const lock = opts.mutate
      ? await acquireLock(stateDir, { command: opts.command, waitMs: opts.lockWaitMs, signal: opts.signal, onWait, yieldToWaiters: opts.yieldLock }).catch(
          inFile(stateDir.path('lock')),
        )
      : null;
    let session: Session | null = null;
    try {
      if (lock?.tookOverFrom) opts.reporter.notify({ code: 'lock.took-over', pid: lock.tookOverFrom.pid, command: lock.tookOverFrom.command });
      const logFile = stateDir.path(EVENT_LOG_FILE);
      const log = opts.mutate
        ? await EventLog.open(stateDir, { exclusive: lock !== null }).catch(inFile(logFile))
        : await EventLog.openForReading(stateDir).catch(inFile(logFile));
      const store = await SnapshotStore.open<EngineState>(stateDir);
      session = new Session(stateDir, log, store, lock, crash, initialState(), opts.reporter);
      if (opts.mutate) {
        const torn = await log!.repairTornTail();
        if (torn) {
          // A crash cut the last line short. Nothing in it was acted upon durably, since every
          // kernel step waits for its intent to be on disk first; its bytes are kept whole under
          // torn/ (doctor reports them until removed), and the log records where.
          opts.reporter.notify({ code: 'recovery.torn-tail', bytes: torn.bytes, keptAs: torn.keptAs });
          await session.append([{ type: 'recovery.note', kind: 'torn-tail', detail: { offset: torn.offset, bytes: torn.bytes, keptAs: torn.keptAs } }], {
            fold: false,
          });
        }
      }
      // The session owns its state (a fresh copy of the snapshot's), so it folds in place.
      const resumed = log && opts.resume ? await resumeFrom(log, opts.resume) : null;
      if (resumed) session.state = resumed;
      else if (log) {
        const replayed = await replay(
          log,
          store,
          (state, e) => (foldInto(state, e), state),
          () => ownCopy(initialState()),
          PROJECTION_SCHEMA,
        );
        session.state = replayed.state;
        session.replayedSeq = replayed.fromSnapshot && replayed.replayed === 0 ? replayed.seq : -1;
      }
      // The backend is chosen, and checked against the one the log recorded, before the kernel is
      // opened: a simulated kernel started for a state dir of the real one would leave its files there.
      const facts = opts.kernel ? undefined : hostFacts();
      const backend = opts.kernel ? opts.kernel.kind : chooseBackend(opts.backend, facts!);
      refuseOtherBackend(session.state.backend, backend, stateDir.root);
      // A simulated kernel that was never started has nothing in it: read-only, it is made in a
      // throwaway directory rather than in the state dir.
      const simDir =
        !opts.mutate && !existsSync(stateDir.path('sim')) ? async () => (session!.scratch = await mkdtemp(path.join(tmpdir(), 'thinlayer-sim-'))) : undefined;
      const kernel = opts.kernel ?? (await openSessionKernel(opts.backend, stateDir, opts.reporter, simDir, facts));
      session.#kernel = crash.wrapKernel(countKernelCallsFromEnv(kernel));
      // The state dir's identity, given once, before anything it names is made (src/domain/names.ts),
      // and with it the backend it is used with.
      if (opts.mutate) {
        const first: ThinlayerEventBody[] = [];
        if (session.state.identity === null) first.push({ type: 'state.identity', id: newIdentity(), ...(session.state.lastSeq > 0 ? { legacy: true } : {}) });
        if (!session.state.backend) first.push({ type: 'state.backend', backend });
        if (first.length > 0) await session.append(first);
      }
      return session;
    } catch (e) {
      await session?.log?.close().catch(() => undefined);
      await session?.closeKernel();
      await lock?.release();
      if (session?.scratch) await rm(session.scratch, { recursive: true, force: true });
      throw e;
    }
  }

  private async closeKernel(): Promise<void> {
    await this.#kernel?.close().catch(() => undefined);
  }

  /**
   * The unterminated bytes the event log ends in, when a read-only session found some: a crash cut
   * an append short and no command that writes has run since (that one keeps them under torn/ and
   * cuts them off). null for a mutating session, which has already done so.
   */
  get unrepairedTornTail(): { offset: number; bytes: number } | null {
    const tail = this.log?.tornTail ?? null;
    return tail && { offset: tail.offset, bytes: tail.bytes };
  }

  /** Checks every line of the event log (EventLog.verify): StateError E_LOG_CORRUPT at the first damaged one. */
  async verifyLog(): Promise<void> {
    await this.log?.verify();
  }

  /**
   * Append events and fold them into the projection. Durable when the promise resolves, unless
   * `durable: false` (see AppendOptions: then the next durable append, or close, makes them so).
   */
  append(bodies: ThinlayerEventBody[], opts: { fold?: boolean; durable?: boolean } = {}): Promise<ThinlayerEvent[]> {
    if (!this.log || !this.lock) throw new InternalError('an append in a read-only session');
    const log = this.log;
    // Written and folded as one turn, so that refresh() never finds an append of this session's
    // on disk but not yet in the projection.
    return this.#turn(async () => {
      const what = bodies.map((b) => ('op' in b ? `${b.type} ${b.op}` : b.type)).join(', ');
      this.crash.boundary(`before append ${what}`);
      const events = await log.append(bodies, { durable: opts.durable }).catch(inFile(this.stateDir.path(EVENT_LOG_FILE)));
      this.crash.boundary(`after append ${what}`);
      if (opts.fold !== false) for (const e of events) foldInto(this.state, e);
      return events;
    });
  }

  #queue: Promise<unknown> = Promise.resolve();

  #turn<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(work, work);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  /**
   * Takes in what the log holds beyond this session's projection, so that a check made now reads the
   * log as it stands, not as it stood when the session opened. A mutating session holds the lock, so
   * normally nothing is there: events beyond what this process appended mean another process wrote
   * while the lock was ours, and the session refuses to go on (StateError E_LOG_FOREIGN) rather than
   * append after events it never read. It takes its turn with this session's appends.
   */
  async refresh(): Promise<void> {
    const log = this.log;
    if (!log || !this.lock) return;
    const beyond = await this.#turn(async () => {
      // An append with fold: false (a torn tail's note) leaves the projection behind its own log: not news.
      if (this.state.lastSeq !== log.lastSeq) return [];
      return log.readFrom(this.state.lastSeq, log.endOffset);
    });
    if (beyond.length === 0) return;
    throw new StateError(
      `another process appended ${beyond.length} event(s) to the event log while this session held the state dir's lock: the lock is not respected (two snapshotters on one state dir?)`,
      'E_LOG_FOREIGN',
    );
  }

  /** Whether this session holds the state dir's lock (a mutating session). */
  get holdsLock(): boolean {
    return this.lock !== null;
  }

  /** Where this session's projection stands in its log, for a later session to resume from; null when it cannot be told. */
  async resumePoint(): Promise<ResumePoint | null> {
    const log = this.log;
    if (!log) return null;
    return this.#turn(async () => {
      if (this.state.lastSeq !== log.lastSeq) return null;
      const offset = log.endOffset;
      if (this.state.lastSeq === 0) return { state: this.state, seq: 0, offset, lineDigest: null };
      const lineDigest = await log.lineDigestEndingAt(offset).catch(() => null);
      return lineDigest ? { state: this.state, seq: this.state.lastSeq, offset, lineDigest } : null;
    });
  }

  /** `save: false` leaves snapshot.json as it is (a long-running process saves now and then, not at every close). */
  async close(opts: { save?: boolean } = {}): Promise<void> {
    try {
      if (opts.save !== false && this.lock && this.log && this.state.lastSeq > 0 && this.state.lastSeq !== this.replayedSeq) {
        const offset = this.state.lastSeq === this.log.lastSeq ? this.log.endOffset : undefined;
        // Without the digest of the line it ends at, a snapshot is never trusted (replay.ts): save none.
        const lineDigest = offset !== undefined ? await this.log.lineDigestEndingAt(offset).catch(() => null) : null;
        // A failed save loses nothing (the log is the truth; the next session replays more of it and
        // saves again), but it is said, never swallowed: a projection too large to write is news.
        if (lineDigest) {
          await this.store.save(this.state.lastSeq, this.state, PROJECTION_SCHEMA, offset, lineDigest).catch((e) => {
            this.saveFailed = true;
            this.reporter.notify({
              code: 'state.snapshot-save-failed',
              file: this.stateDir.path('snapshot.json'),
              error: e instanceof Error ? e.message : String(e),
            });
          });
        }
      }
      await this.log?.close();
      await this.#kernel?.close();
    } finally {
      await this.lock?.release();
      if (this.scratch) await rm(this.scratch, { recursive: true, force: true });
    }
  }
}
