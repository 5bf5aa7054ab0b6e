// A session: the state dir opened, the kernel chosen, the log replayed into the projection, and (for
// commands that mutate) the lock held. Everything a command does happens inside one session.

import { openStateDir, type StateDir } from '../events/state-dir.ts';
import { EventLog } from '../events/log.ts';
import { acquireLock, type Lock } from '../events/lock.ts';
import { SnapshotStore } from '../events/snapshot.ts';
import { replay } from '../events/replay.ts';
import type { ThinlayerEvent, ThinlayerEventBody } from '../events/types.ts';
import type { KernelPort } from '../kernel/port.ts';
import { openKernel, type BackendChoice } from '../kernel/select.ts';
import { foldInto, initialState, ownCopy, PROJECTION_SCHEMA, type EngineState } from '../lifecycle/projection.ts';
import { CrashPoints } from './crash-points.ts';
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
}

/** The kernel a command runs on, chosen by the backend option; why the choice fell as it did goes to the reporter. */
export async function openSessionKernel(backend: BackendChoice, stateDir: StateDir, reporter: Reporter): Promise<KernelPort> {
  const chosen = await openKernel(backend, stateDir);
  if (chosen.notice) reporter.notify({ code: 'backend.notice', backend: chosen.kernel.kind, text: chosen.notice });
  return chosen.kernel;
}

export class Session {
  private constructor(
    readonly stateDir: StateDir,
    readonly kernel: KernelPort,
    readonly log: EventLog,
    private readonly store: SnapshotStore<EngineState>,
    private readonly lock: Lock | null,
    readonly crash: CrashPoints,
    public state: EngineState,
  ) {}

  /** The sequence the stored snapshot already covers (-1: none fits), so close() saves only when there is news. */
  private replayedSeq = -1;

  static async open(opts: SessionOptions): Promise<Session> {
    const stateDir = await openStateDir(opts.stateDir);
    const crash = new CrashPoints();
    const lock = opts.mutate ? await acquireLock(stateDir, { command: opts.command, waitMs: opts.lockWaitMs }) : null;
    try {
      if (lock?.tookOverFrom) opts.reporter.notify({ code: 'lock.took-over', pid: lock.tookOverFrom.pid, command: lock.tookOverFrom.command });
      const kernel = opts.kernel ?? (await openSessionKernel(opts.backend, stateDir, opts.reporter));
      const log = await EventLog.open(stateDir, { exclusive: lock !== null });
      const store = await SnapshotStore.open<EngineState>(stateDir);
      const session = new Session(stateDir, crash.wrapKernel(countKernelCallsFromEnv(kernel)), log, store, lock, crash, initialState());
      if (opts.mutate) {
        const torn = await log.repairTornTail();
        if (torn) {
          // A crash cut the last line short. Nothing in it was acted upon durably, since every
          // kernel step waits for its intent to be on disk first; record what was dropped.
          opts.reporter.notify({ code: 'recovery.torn-tail', bytes: torn.bytes });
          await session.append([{ type: 'recovery.note', kind: 'torn-tail', detail: { offset: torn.offset, bytes: torn.bytes, text: torn.text.slice(0, 200) } }], { fold: false });
        }
      }
      // The session owns its state (a fresh copy of the snapshot's), so it folds in place.
      const replayed = await replay(log, store, (state, e) => (foldInto(state, e), state), () => ownCopy(initialState()), PROJECTION_SCHEMA);
      session.state = replayed.state;
      session.replayedSeq = replayed.fromSnapshot && replayed.replayed === 0 ? replayed.seq : -1;
      return session;
    } catch (e) {
      await lock?.release();
      throw e;
    }
  }

  /**
   * Append events and fold them into the projection. Durable when the promise resolves, unless
   * `durable: false` (see AppendOptions: then the next durable append, or close, makes them so).
   */
  async append(bodies: ThinlayerEventBody[], opts: { fold?: boolean; durable?: boolean } = {}): Promise<ThinlayerEvent[]> {
    this.crash.boundary('before append');
    const events = await this.log.append(bodies, { durable: opts.durable });
    this.crash.boundary('after append');
    if (opts.fold !== false) for (const e of events) foldInto(this.state, e);
    return events;
  }

  async close(): Promise<void> {
    try {
      if (this.lock && this.state.lastSeq > 0 && this.state.lastSeq !== this.replayedSeq) {
        const offset = this.state.lastSeq === this.log.lastSeq ? this.log.endOffset : undefined;
        await this.store.save(this.state.lastSeq, this.state, PROJECTION_SCHEMA, offset).catch(() => undefined);
      }
      await this.log.close();
      await this.kernel.close();
    } finally {
      await this.lock?.release();
    }
  }
}
