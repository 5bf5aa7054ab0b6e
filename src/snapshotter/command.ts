// `thinlayer snapshotter -f MANIFEST --socket PATH`: containerd's snapshotter service on thinlayer.
// Start: under the lock, this process recorded as the state dir's snapshotter (a second one is
// refused: two would hand out the same keys with different thin ids), the pool and its base made
// when missing (the manifest's `pool:` says which), what a crash left completed or rolled back,
// active snapshots activated again; then the socket is bound (0600) and only then exists. SIGTERM
// or SIGINT, or a stop request (`destroy --force`, `down --force`: src/events/holders.ts): no new
// calls, the calls under way finish and are logged, the session closes (projection saved, lock
// released), the socket is removed, the record too. Under systemd (a unit of Type=notify), READY=1
// is sent once the socket answers.

import { sdNotify } from '../host/sd-notify.ts';
import { lstat, unlink, chmod, rename } from 'node:fs/promises';
import { connect } from 'node:net';
import { resolve } from 'node:path';
import type { Reporter } from '../messages/message-port.ts';
import type { BackendChoice } from '../kernel/select.ts';
import { openKernel } from '../kernel/select.ts';
import type { KernelPort } from '../kernel/kernel-port.ts';
import { openStateDir } from '../events/state-dir.ts';
import { claimHolder, type HolderClaim } from '../events/holders.ts';
import { CrashPoints } from '../engine/crash-points.ts';
import { initialState } from '../lifecycle/projection.ts';
import { dmIdentity } from '../domain/names.ts';
import { UserError } from '../errors/index.ts';
import { loadManifest } from '../manifest/load.ts';
import { SessionGate } from './session-gate.ts';
import { stepsOf } from './snapshot-steps.ts';
import { withRun } from '../engine/with-run.ts';
import { ensurePoolAndBase } from './pool-setup.ts';
import { recoverSnapshots } from './recovery.ts';
import { SnapshotService } from './service.ts';
import { buildServer, bindUnix, shutdown } from './server.ts';

export interface SnapshotterOptions {
  manifest: string;
  socket: string;
  stateDir: string;
  backend: BackendChoice;
  reporter: Reporter;
  /** Aborted by SIGTERM or SIGINT: stop cleanly. */
  signal: AbortSignal;
  /** How long a request waits for another holder of the lock (an apply). */
  lockWaitMs?: number;
}

/** The kernel shared by every session of the process: sessions close, it stays open. */
function kept(kernel: KernelPort): KernelPort {
  return new Proxy(kernel, {
    get(target, prop, receiver) {
      if (prop === 'close') return async () => undefined;
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

/** A socket left by a snapshotter that died is removed; one that answers, or any other file, is refused. */
async function freeSocketPath(socket: string): Promise<void> {
  const st = await lstat(socket).catch(() => null);
  if (!st) return;
  if (!st.isSocket())
    throw new UserError(`--socket ${socket}: a file that is not a socket is there; thinlayer does not replace it`, { path: '--socket' }, 'E_SOCKET');
  const alive = await new Promise<boolean>((done) => {
    const c = connect(socket);
    c.once('connect', () => (c.destroy(), done(true)));
    c.once('error', () => done(false));
  });
  if (alive) throw new UserError(`--socket ${socket}: another process serves this socket`, { path: '--socket' }, 'E_SOCKET');
  await unlink(socket);
}

/**
 * READY=1 to systemd when it started this process with NOTIFY_SOCKET (a Type=notify unit), so that
 * containerd, ordered after the unit, starts only once the socket answers (src/host/sd-notify.ts).
 * Not under systemd: nothing is loaded.
 */
function notifySystemdReady(reporter: Reporter): void {
  if (!process.env.NOTIFY_SOCKET) return;
  try {
    sdNotify('READY=1');
  } catch (e) {
    reporter.notify({ code: 'warning', text: `could not tell systemd the snapshotter is ready (${(e as Error).message}): a Type=notify unit will time out` });
  }
}

export async function runSnapshotter(opts: SnapshotterOptions): Promise<{ snapshots: number }> {
  const socket = resolve(opts.socket);
  const manifest = await loadManifest(opts.manifest);
  const dir = await openStateDir(opts.stateDir);
  const chosen = await openKernel(opts.backend, dir);
  if (chosen.notice) opts.reporter.notify({ code: 'backend.notice', backend: chosen.kernel.kind, text: chosen.notice });
  const kernel = kept(chosen.kernel);
  const poolDmName = dmIdentity(manifest.pool.name, 'pool').dmName;
  const gate = new SessionGate(
    { stateDir: dir.root, kernel, crash: new CrashPoints(), reporter: opts.reporter, lockWaitMs: opts.lockWaitMs ?? 30_000, lingerMs: 200 },
    initialState(),
  );
  let claim: HolderClaim | null = null;
  // SIGTERM, SIGINT, or a stop request from destroy or down --force.
  const stopping = new AbortController();
  const stop = () => stopping.abort();
  if (opts.signal.aborted) stop();
  opts.signal.addEventListener('abort', stop, { once: true });
  try {
    await freeSocketPath(socket);
    // One run for the serving process (why not one per call: snapshot-steps.ts): started under the
    // lock once this process is the state dir's snapshotter, finished when it stops cleanly. A
    // second snapshotter, refused, leaves no run.
    const served = await withRun(
      (work) => gate.run(work),
      'snapshotter',
      async (run) => {
        const runSteps = stepsOf(run, poolDmName, opts.reporter);
        await gate.run(async (s) => {
          // Under the lock, so of two snapshotters starting together the second sees the first.
          claim = await claimHolder(s.stateDir, 'snapshotter', { socket });
          await run.start(s);
          await ensurePoolAndBase(s, manifest.pool, manifest.file, runSteps);
          const recovered = await recoverSnapshots(s, kernel, runSteps);
          if (recovered.deleted + recovered.reactivated + recovered.deactivated + recovered.settled > 0)
            opts.reporter.notify({ code: 'snapshotter.recovered', ...recovered });
        });
        await gate.close();
        claim!.watchForStop((request) => {
          opts.reporter.notify({ code: 'holder.stop-requested', kind: 'snapshotter', by: request.by, pid: request.byPid });
          stop();
        });
        if (stopping.signal.aborted) return false;
        const fs = gate.state.desired?.pool.filesystem ?? manifest.pool.filesystem;
        const service = new SnapshotService({
          gate,
          kernel,
          runSteps,
          pool: manifest.pool.name,
          filesystem: fs,
          stateDir: dir,
          reporter: opts.reporter,
          floor: { poolDmName, minFreeFraction: manifest.pool.minFreeFraction },
          writableSizeBytes: manifest.snapshotter?.writableSizeBytes ?? null,
        });
        const server = buildServer(service, opts.reporter);
        // The socket is made 0600 as it is created (no moment where another user could connect), and
        // under a name of its own: bind(2) makes the file before listen(2) accepts on it, so it is
        // renamed to PATH only once the server listens. A client that finds PATH is answered.
        const bound = `${socket}.${process.pid}.binding`;
        await unlink(bound).catch(() => undefined);
        const umask = process.umask(0o177);
        try {
          await bindUnix(server, bound);
        } finally {
          process.umask(umask);
        }
        await chmod(bound, 0o600);
        await rename(bound, socket);
        opts.reporter.notify({ code: 'snapshotter.ready', socket, pool: manifest.pool.name, snapshots: Object.keys(gate.state.snapshots).length });
        notifySystemdReady(opts.reporter);
        await new Promise<void>((done) => (stopping.signal.aborted ? done() : stopping.signal.addEventListener('abort', () => done(), { once: true })));
        await shutdown(server);
        return true;
      },
      { lazy: true, runId: `snapshotter-${Date.now().toString(36)}-${process.pid}` },
    );
    await gate.close();
    if (served) await unlink(socket).catch(() => undefined);
    return { snapshots: Object.keys(gate.state.snapshots).length };
  } finally {
    opts.signal.removeEventListener('abort', stop);
    await gate.close().catch(() => undefined);
    await (claim as HolderClaim | null)?.release().catch(() => undefined);
    await chosen.kernel.close();
  }
}
