// The snapshotter's sessions. It holds the state dir's lock only while requests that change
// something are in flight (and a short linger after, so a burst of requests shares one session):
// between bursts the lock is free, so `thinlayer apply` can run beside a running snapshotter. Every
// session replays what others appended meanwhile: only that, when the log bears out where the last
// session left its projection (Session's resume), so opening one does not cost the whole state; and
// the projection is saved (snapshot.json, a write of the whole state) at most every saveEveryMs and
// at close(). Reads (Stat, List, Mounts) never wait for a session: they read the projection the last
// one left.
//
// Under steady load there is no "between bursts": requests keep arriving within the linger, and the
// session would never close. So the gate yields: a process waiting for the lock announces itself
// (src/events/lock.ts, `lock-waiters/`), and a request that finds one does not join the open session.
// It waits, with every request after it, until the requests already in the session are done; the
// session then closes (projection saved, lock released), and the next one is opened only after the
// waiter has had the lock (`yieldLock`). A waiter therefore waits for the requests in flight when it
// announced itself, not for the load to end.

import { Session, type ResumePoint } from '../engine/session.ts';
import type { CrashPoints } from '../engine/crash-points.ts';
import type { KernelPort } from '../kernel/kernel-port.ts';
import type { Reporter } from '../messages/message-port.ts';
import type { EngineState } from '../model/engine-state.ts';
import { liveWaiter } from '../events/lock.ts';
import { hasCode } from '../errors/index.ts';
import { openStateDir, type StateDir } from '../events/state-dir.ts';

export interface GateOptions {
  stateDir: string;
  kernel: KernelPort;
  crash: CrashPoints;
  reporter: Reporter;
  /** How long to wait for another holder of the lock (an apply) before a request fails. */
  lockWaitMs: number;
  /** How long a session stays open after its last request. */
  lingerMs: number;
  /**
   * How often a session's close saves the projection (snapshot.json). Saving writes the whole state,
   * so a burst's close saves only when this long has passed since the last save; close() (stop)
   * always saves. Default 30 s.
   */
  saveEveryMs?: number;
}

export class SessionGate {
  #current: Promise<Session> | null = null;
  #closing: Promise<void> = Promise.resolve();
  #users = 0;
  #linger: NodeJS.Timeout | null = null;
  /** Set while the open session finishes its requests and closes for a waiter: new requests wait for it. */
  #yielding: Promise<void> | null = null;
  #yielded: () => void = () => undefined;
  #dir: Promise<StateDir> | null = null;
  #stale = false;
  /** Where the last session left the projection: the next one reads only what was appended since. */
  #resume: ResumePoint | null = null;
  #lastSave = 0;
  /** The projection as the last session left it (or the open one's, live). */
  state: EngineState;

  constructor(
    private readonly opts: GateOptions,
    initial: EngineState,
  ) {
    this.state = initial;
  }

  /** Runs `work` inside a mutating session (opened, or joined when one is open). */
  async run<T>(work: (session: Session) => Promise<T>): Promise<T> {
    const open = this.#current;
    if (open && !this.#yielding && (await this.#someoneWaits()) && this.#current === open && this.#yielding === null) {
      this.#yielding = new Promise((done) => (this.#yielded = done));
      if (this.#users === 0) this.#endYield();
    }
    while (this.#yielding) await this.#yielding;
    this.#users += 1;
    if (this.#linger) clearTimeout(this.#linger);
    this.#linger = null;
    let session: Session;
    try {
      session = await this.#acquire();
    } catch (e) {
      this.#release();
      throw e;
    }
    this.state = session.state;
    try {
      return await work(session);
    } catch (e) {
      // Another process wrote to the log under this session's lock (Session.refresh): this session's
      // projection can no longer be trusted, so it is closed and the next call opens (replays) anew.
      if (hasCode(e, 'E_LOG_FOREIGN')) this.#stale = true;
      throw e;
    } finally {
      this.state = session.state;
      this.#release();
    }
  }

  /** Closes the session now (saving the projection, releasing the lock) once no request uses it. */
  async close(): Promise<void> {
    if (this.#linger) clearTimeout(this.#linger);
    this.#linger = null;
    if (this.#users === 0) this.#closeNow(true);
    await this.#closing;
  }

  /** Whether a process waits for the lock (a failed look counts as no: the request goes on). */
  async #someoneWaits(): Promise<boolean> {
    this.#dir ??= openStateDir(this.opts.stateDir);
    try {
      return (await liveWaiter(await this.#dir)) !== null;
    } catch {
      return false;
    }
  }

  /** The session given up for a waiter closes now; the requests that waited go on (to a session opened after it). */
  #endYield(): void {
    if (this.#linger) clearTimeout(this.#linger);
    this.#linger = null;
    this.#closeNow();
    this.#yielding = null;
    this.#yielded();
  }

  #acquire(): Promise<Session> {
    if (!this.#current) {
      const { stateDir, kernel, crash, reporter, lockWaitMs } = this.opts;
      this.#current = this.#closing.then(() => {
        const resume = this.#resume;
        this.#resume = null; // taken over (folded in place) by this session, or not usable
        return Session.open({
          stateDir,
          backend: kernel.kind,
          kernel,
          crash,
          reporter,
          mutate: true,
          command: 'snapshotter',
          lockWaitMs,
          resume,
          yieldLock: true,
        });
      });
      this.#current.catch(() => (this.#current = null));
    }
    return this.#current;
  }

  #release(): void {
    this.#users -= 1;
    if (this.#stale && this.#current) {
      // Closed at once, whoever still uses it: its projection can no longer be trusted.
      this.#closeNow();
      this.#stale = false;
    }
    if (this.#users > 0) return;
    if (this.#yielding) {
      this.#endYield(); // also when the session failed to open: the waiting requests go on
      return;
    }
    if (!this.#current) return;
    this.#linger = setTimeout(() => {
      this.#linger = null;
      if (this.#users === 0) this.#closeNow();
    }, this.opts.lingerMs);
  }

  #closeNow(final = false): void {
    const current = this.#current;
    if (!current) return;
    this.#current = null;
    const stale = this.#stale;
    this.#closing = current.then(
      async (s) => {
        this.state = s.state;
        this.#resume = stale ? null : await s.resumePoint().catch(() => null);
        const save = final || Date.now() - this.#lastSave >= (this.opts.saveEveryMs ?? 30_000);
        if (save) this.#lastSave = Date.now();
        await s.close({ save });
        if (s.saveFailed) this.#lastSave = 0; // reported by the session; tried again at the next close
      },
      () => undefined,
    );
  }
}
