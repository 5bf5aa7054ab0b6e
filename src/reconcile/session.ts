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
import { chooseBackend, hostFacts, openKernel, refuseOtherBackend, type BackendChoice, type HostFacts } from '../kernel/select.ts';
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
export async function openSessionKernel(backend: BackendChoice, stateDir: StateDir, reporter: Reporter, simDir?: () => Promise<string>, facts?: HostFacts): Promise<KernelPort> {
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
  ) {}

  #kernel: KernelPort | null = null;
  /** The kernel, opened once the log is read and its recorded backend agrees with the one chosen. */
  get kernel(): KernelPort {
    if (!this.#kernel) throw new InternalError('the kernel of a session used before it was opened');
    return this.#kernel;
  }

  /** The sequence the stored snapshot already covers (-1: none fits), so close() saves only when there is news. */
  private replayedSeq = -1;
  /** The throwaway directory of a read-only session's empty simulated kernel, removed on close. */
  private scratch: string | null = null;

  static async open(opts: SessionOptions): Promise<Session> {
    // A read-only session creates, chmods and writes nothing in the state dir (openStateDir readOnly).
    const stateDir = await openStateDir(opts.stateDir, { readOnly: !opts.mutate });
    const crash = opts.crash ?? new CrashPoints();
    const onWait = (h: LockHolder) => opts.reporter.notify({ code: 'lock.waiting', pid: h.pid, command: h.command, since: h.since });
    const lock = opts.mutate ? await acquireLock(stateDir, { command: opts.command, waitMs: opts.lockWaitMs, signal: opts.signal, onWait }).catch(inFile(stateDir.path('lock'))) : null;
    let session: Session | null = null;
    try {
      if (lock?.tookOverFrom) opts.reporter.notify({ code: 'lock.took-over', pid: lock.tookOverFrom.pid, command: lock.tookOverFrom.command });
      const logFile = stateDir.path(EVENT_LOG_FILE);
      const log = opts.mutate ? await EventLog.open(stateDir, { exclusive: lock !== null }).catch(inFile(logFile)) : await EventLog.openForReading(stateDir).catch(inFile(logFile));
      const store = await SnapshotStore.open<EngineState>(stateDir);
      session = new Session(stateDir, log, store, lock, crash, initialState());
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
      // The backend is chosen, and checked against the one the log recorded, before the kernel is
      // opened: a simulated kernel started for a state dir of the real one would leave its files there.
      const facts = opts.kernel ? undefined : hostFacts();
      const backend = opts.kernel ? opts.kernel.kind : chooseBackend(opts.backend, facts!);
      refuseOtherBackend(session.state.backend, backend, stateDir.root);
      // A simulated kernel that was never started has nothing in it: read-only, it is made in a
      // throwaway directory rather than in the state dir.
      const simDir = !opts.mutate && !existsSync(stateDir.path('sim')) ? async () => (session!.scratch = await mkdtemp(path.join(tmpdir(), 'thinlayer-sim-'))) : undefined;
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
      await this.#kernel?.close();
    } finally {
      await this.lock?.release();
      if (this.scratch) await rm(this.scratch, { recursive: true, force: true });
    }
  }
}
