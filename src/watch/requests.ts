// Requests from other thinlayer commands to a running watcher: "reconcile now". A request is a
// small JSON file dropped in `requests/` in the state dir. Files were chosen over a socket because
// a request needs no watcher to be listening: one made while the watcher is down (or restarting)
// is served when it starts, and `touch STATE_DIR/requests/now` works from a shell script.
//
// A request is written under a dot-name and renamed into place, so the watcher never reads half of
// one; the watcher deletes each request as it takes it. The directory is watched, and also scanned
// periodically, because a directory watch can miss events (overflow, network file systems).

import { watch, type FSWatcher } from 'node:fs';
import { mkdir, readdir, readFile, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { Observable } from 'rxjs';
import { writeFileWhole, type StateDir } from '../events/state-dir.ts';
import type { Trigger } from './triggers.ts';

export const REQUESTS_DIR = 'requests';

export interface ReconcileRequest {
  /** Who asks: a command name such as 'apply', or 'shell'. */
  from: string;
  at: string;
  pid: number;
}

export async function ensureRequestsDir(stateDir: StateDir): Promise<string> {
  const dir = stateDir.path(REQUESTS_DIR);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  return dir;
}

/** Ask a watcher (running now or started later) to reconcile. Returns the request file's path. */
export async function requestReconcile(stateDir: StateDir, from: string): Promise<string> {
  await ensureRequestsDir(stateDir);
  const name = `${Date.now()}-${process.pid}-${randomBytes(4).toString('hex')}.json`;
  const body: ReconcileRequest = { from, at: new Date().toISOString(), pid: process.pid };
  await writeFileWhole(stateDir, `${REQUESTS_DIR}/${name}`, `${JSON.stringify(body)}\n`);
  return stateDir.path(`${REQUESTS_DIR}/${name}`);
}

/** Takes (reads and deletes) every complete request in the directory; unreadable ones count as anonymous. */
export async function takeRequests(stateDir: StateDir): Promise<Array<{ file: string; from: string }>> {
  const dir = await ensureRequestsDir(stateDir);
  const taken: Array<{ file: string; from: string }> = [];
  for (const name of (await readdir(dir)).sort()) {
    if (name.startsWith('.')) continue; // a request still being written
    const path = stateDir.path(`${REQUESTS_DIR}/${name}`);
    let from = 'unknown';
    try {
      const parsed = JSON.parse(await readFile(path, 'utf8')) as Partial<ReconcileRequest>;
      if (typeof parsed.from === 'string' && parsed.from) from = parsed.from;
    } catch {
      // `touch requests/now` makes an empty file: still a request.
    }
    try {
      await unlink(path);
    } catch {
      continue; // someone else took it (a second watcher): theirs to serve
    }
    taken.push({ file: name, from });
  }
  return taken;
}

/** A 'request' trigger for each request taken; looks on every directory event and every `scanMs`. */
export function requests$(stateDir: StateDir, opts: { scanMs: number }): Observable<Trigger> {
  return new Observable<Trigger>((subscriber) => {
    let watcher: FSWatcher | null = null;
    let closed = false;
    let scanning: Promise<void> = Promise.resolve();
    let again = false;

    const scan = () => {
      // One scan at a time; a look asked for during a scan happens right after it.
      if (again) return;
      again = true;
      scanning = scanning.then(async () => {
        again = false;
        if (closed) return;
        try {
          for (const r of await takeRequests(stateDir)) if (!closed) subscriber.next({ kind: 'request', detail: r.from });
        } catch {
          // The directory is unreadable just now; the next scan tries again.
        }
      });
    };

    void ensureRequestsDir(stateDir).then(
      (dir) => {
        if (closed) return;
        try {
          watcher = watch(dir, { persistent: false }, scan);
          watcher.on('error', () => {
            watcher?.close();
            watcher = null; // the periodic scan carries on alone
          });
        } catch {
          // No directory watch: the periodic scan is enough.
        }
        scan();
      },
      (e) => subscriber.error(e),
    );
    const timer = setInterval(scan, opts.scanMs);
    timer.unref();
    return () => {
      closed = true;
      watcher?.close();
      clearInterval(timer);
    };
  });
}
