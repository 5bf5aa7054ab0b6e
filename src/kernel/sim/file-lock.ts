// One mutation at a time across processes, as the kernel serialises its ioctls. The CLI runs many
// times on one state dir and may be killed with SIGKILL while holding the lock, so a lock whose
// owner is gone (or that is older than any mutation can take) is taken over.

import fs from 'node:fs';
import { StateError } from '../../errors/index.ts';
import { processExists } from '../../host/process-exists.ts';

const STALE_AFTER_MS = 30_000;
const GIVE_UP_AFTER_MS = 60_000;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

export class MutationLock {
  private depth = 0;

  constructor(private readonly file: string) {}

  /** Runs `fn` holding the lock. Synchronous on purpose: no other work interleaves with a mutation. */
  hold<T>(fn: () => T): T {
    if (this.depth > 0) {
      this.depth++;
      try {
        return fn();
      } finally {
        this.depth--;
      }
    }
    this.acquire();
    this.depth = 1;
    try {
      return fn();
    } finally {
      this.depth = 0;
      fs.rmSync(this.file, { force: true });
    }
  }

  private acquire(): void {
    const started = Date.now();
    for (;;) {
      try {
        const fd = fs.openSync(this.file, 'wx');
        fs.writeSync(fd, String(process.pid));
        fs.closeSync(fd);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      if (this.takeOverIfStale()) continue;
      if (Date.now() - started > GIVE_UP_AFTER_MS) {
        throw new StateError(`the simulated kernel is locked by another process (${this.file})`, 'E_STATE_LOCKED');
      }
      Atomics.wait(sleeper, 0, 0, 2);
    }
  }

  private takeOverIfStale(): boolean {
    let owner: string;
    let mtimeMs: number;
    try {
      owner = fs.readFileSync(this.file, 'utf8');
      mtimeMs = fs.statSync(this.file).mtimeMs;
    } catch {
      return true; // released meanwhile: try again at once
    }
    const pid = Number(owner);
    // An empty file is a lock being written right now; give its writer a moment.
    const ownerGone = owner !== '' && (!Number.isInteger(pid) || pid === process.pid || !processExists(pid));
    if (!ownerGone && Date.now() - mtimeMs < STALE_AFTER_MS) return false;
    try {
      // Only remove the lock we judged: a fresh one taken meanwhile carries another pid.
      if (fs.readFileSync(this.file, 'utf8') === owner) fs.rmSync(this.file, { force: true });
    } catch {
      // gone already
    }
    return true;
  }
}
