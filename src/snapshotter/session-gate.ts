// The snapshotter's sessions. It holds the state dir's lock only while requests that change
// something are in flight (and a short linger after, so a burst of requests shares one session):
// between bursts the lock is free, so `thinlayer apply` can run beside a running snapshotter. Every
// session replays what others appended meanwhile. Reads (Stat, List, Mounts) never wait for a
// session: they read the projection the last one left.
//
// Under steady load there is no "between bursts": requests keep arriving within the linger, and a
// session would never close. So the gate yields: a process waiting for the lock announces itself
// (src/events/lock.ts, `lock-waiters/`), and a request that finds one does not join the open
// session. That session retires: it takes no new request, closes (projection saved, lock released)
// as soon as the requests already in it are done, and the next session is opened only after the
// waiter has had the lock (`yieldLock`). A waiter therefore waits for the requests in flight when it
// announced itself, not for the load to end.

import { Session } from '../reconcile/session.ts';
import type { CrashPoints } from '../reconcile/crash-points.ts';
import type { KernelPort } from '../kernel/port.ts';
import type { Reporter } from '../messages/port.ts';
import type { EngineState } from '../lifecycle/projection.ts';
import { liveWaiter } from '../events/lock.ts';
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
}

/** One session and the requests in it. A retired one takes no new request and closes when they are done. */
interface Entry {
  session: Promise<Session>;
  users: number;
  retired: boolean;
  closed: Promise<void>;
  markClosed: () => void;
}

export class SessionGate {
  #current: Entry | null = null;
  /** Settles when the last session given up has closed: the next one opens after it. */
  #closing: Promise<void> = Promise.resolve();
  #linger: NodeJS.Timeout | null = null;
  #dir: Promise<StateDir> | null = null;
  /** The projection as the last session left it (or the open one's, live). */
  state: EngineState;

  constructor(
    private readonly opts: GateOptions,
    initial: EngineState,
  ) {
    this.state = initial;
  }

  /** Runs `work` inside a mutating session (opened, or joined when one is open and nobody waits for the lock). */
  async run<T>(work: (session: Session) => Promise<T>): Promise<T> {
    const open = this.#current;
    if (open && !open.retired && (await this.#someoneWaits()) && this.#current === open) this.#retire(open);
    const entry = this.#enter();
    let session: Session;
    try {
      session = await entry.session;
    } catch (e) {
      this.#leave(entry);
      throw e;
    }
    this.state = session.state;
    try {
      return await work(session);
    } finally {
      this.state = session.state;
      this.#leave(entry);
    }
  }

  /** Closes the session now (saving the projection, releasing the lock) once no request uses it. */
  async close(): Promise<void> {
    const open = this.#current;
    if (open) this.#retire(open);
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

  #enter(): Entry {
    if (this.#linger) clearTimeout(this.#linger);
    this.#linger = null;
    if (!this.#current) {
      const { stateDir, kernel, crash, reporter, lockWaitMs } = this.opts;
      let markClosed!: () => void;
      const closed = new Promise<void>((done) => (markClosed = done));
      const session = this.#closing.then(() =>
        Session.open({ stateDir, backend: kernel.kind, kernel, crash, reporter, mutate: true, command: 'snapshotter', lockWaitMs, yieldLock: true }),
      );
      const entry: Entry = { session, users: 0, retired: false, closed, markClosed };
      this.#current = entry;
      this.#closing = closed;
      session.catch(() => {
        // Never opened: nothing to close. The next request tries again.
        if (this.#current === entry) this.#current = null;
        entry.retired = true;
        markClosed();
      });
    }
    this.#current.users += 1;
    return this.#current;
  }

  #leave(entry: Entry): void {
    entry.users -= 1;
    if (entry.users > 0) return;
    if (entry.retired) return this.#closeEntry(entry);
    this.#linger = setTimeout(() => {
      this.#linger = null;
      if (this.#current === entry && entry.users === 0) this.#retire(entry);
    }, this.opts.lingerMs);
  }

  /** No new request joins `entry`; it closes once the requests in it are done. */
  #retire(entry: Entry): void {
    if (this.#current === entry) this.#current = null;
    if (this.#linger) clearTimeout(this.#linger);
    this.#linger = null;
    if (entry.retired) return;
    entry.retired = true;
    if (entry.users === 0) this.#closeEntry(entry);
  }

  #closeEntry(entry: Entry): void {
    entry.session.then(
      async (s) => {
        this.state = s.state;
        try {
          await s.close();
        } finally {
          entry.markClosed();
        }
      },
      () => entry.markClosed(),
    );
  }
}
