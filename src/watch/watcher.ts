// Watch mode assembled: the triggers, the loop, and the run that each trigger causes. A run takes
// the state dir's lock only for its own length (other commands can run between runs), reads the
// manifest (an invalid edit keeps the last valid one), finishes any interrupted pool grow,
// reconciles, checks the pool's use (warnings, autoextend) and reports the status.
//
// Watch records itself as the state dir's watch (src/events/holders.ts) for as long as it runs, so
// `destroy` and `down` refuse while it runs, or, given --force, ask it to stop: it then stops as
// after SIGTERM (the step under way finishes and is recorded) and exits before they change
// anything, so it never re-creates what they take away.
//
// Watch never deletes a device on its own authority: a manifest edit whose plan deletes devices
// is not applied (the recorded desired state is kept and drift repair goes on) until someone
// confirms it with `thinlayer apply -f FILE --yes`. Deletions needed to reach the recorded desired
// state were confirmed when it was recorded, so those go ahead.

import { resolve as resolvePath } from 'node:path';
import { merge, type Observable } from 'rxjs';
import { openStateDir } from '../events/state-dir.ts';
import { acquireLock } from '../events/lock.ts';
import { claimHolder } from '../events/holders.ts';
import type { BackendChoice } from '../kernel/select.ts';
import type { KernelPort } from '../kernel/kernel-port.ts';
import type { Manifest } from '../model/manifest.ts';
import type { Plan } from '../model/step-contract.ts';
import { Session, openSessionKernel } from '../engine/session.ts';
import { reconcile } from '../reconcile/reconcile.ts';
import { resolveContent } from '../layers/resolve-content.ts';
import { readDesired } from '../app/desired.ts';
import { checkBeforeCreating } from '../app/checked-session.ts';
import type { LayerContent } from '../model/layer-content.ts';
import { completePendingGrows } from '../actions/pool-grow.ts';
import { readStatus, type StatusView } from '../api/status.ts';
import { dmIdentity } from '../domain/names.ts';
import { poolIdentity } from '../lifecycle/current-pool.ts';
import { desiredDigestOf, sameDesired } from '../plan/desired-state.ts';
import { systemCallError, ThinlayerError, UserError } from '../errors/index.ts';
import type { Message, Reporter } from '../messages/message-port.ts';
import { startLoop, type LoopSummary } from './watch-loop.ts';
import { backoffForInterval, type BackoffPolicy } from './backoff.ts';
import { startAndInterval$, processSignal$, poolEvents$, type LookedAt, type Trigger } from './triggers.ts';
import { manifestChanges$, ManifestFollower } from './manifest-watch.ts';
import { untrustedSources } from './trust.ts';
import { ensureRequestsDir, requests$ } from './requests.ts';
import { Autoextender, DEFAULT_AUTOEXTEND, type AutoextendPolicy } from './autoextend.ts';
import type { WatchMetrics } from './metrics.ts';

export interface WatchOptions {
  /** The manifest to follow. */
  file: string;
  stateDir: string;
  backend: BackendChoice;
  /** Use this kernel instead of choosing one (tests, embedding programs). It is not closed. */
  kernel?: KernelPort;
  /** The drift check period. */
  intervalMs: number;
  /** How often the pool's event counter is read (default: the interval, at most 5 s). */
  poolPollMs?: number;
  reporter: Reporter;
  /** Called with the status after every run that reached the end. */
  onStatus?: (view: StatusView) => void;
  metrics?: WatchMetrics;
  metricsUrl?: string | null;
  /** Aborting ends the watch after the current step, which is recorded. */
  signal: AbortSignal;
  /** SIGHUP deliveries (default: this process's). */
  hangups?: Observable<Trigger>;
  autoextend?: AutoextendPolicy;
  backoff?: BackoffPolicy;
  /** How long one run waits for another command to release the state dir's lock before it counts as failed. */
  lockWaitMs?: number;
  /** Quiet time after a manifest file event before its content is compared. */
  settleMs?: number;
}

/** Watches until the signal is aborted. Throws a UserError at once when the manifest is invalid at the start. */
export async function watch(opts: WatchOptions): Promise<LoopSummary> {
  const follower = new ManifestFollower(opts.file);
  const first = await follower.read();
  if (first.kind === 'invalid') throw first.error; // a bad manifest at the start is refused, as apply would

  const { metrics } = opts;
  const reporter: Reporter = {
    notify(m: Message) {
      if (m.code === 'pool.grown') metrics?.countPoolGrow();
      opts.reporter.notify(m);
    },
  };

  // Layer content is resolved (every source hashed) only for a manifest that differs from the
  // recorded one: the recorded manifest's content is what apply resolved and recorded with it, so a
  // drift check costs no hashing, and an apply that re-read changed sources is not undone.
  let resolved: { manifest: string; content: LayerContent } | null = null;
  const reportedSources = new Set<string>();
  const contentOf = async (manifest: Manifest): Promise<LayerContent> => {
    const key = desiredDigestOf(manifest);
    if (resolved?.manifest !== key) {
      for (const u of await untrustedSources(manifest)) {
        const id = `${u.layer}\0${u.source}\0${u.why}`;
        if (!reportedSources.has(id)) reporter.notify({ code: 'watch.untrusted-source', file: opts.file, ...u });
        reportedSources.add(id);
      }
      resolved = { manifest: key, content: await resolveContent(manifest) };
    }
    return resolved.content;
  };
  // A state dir with nothing recorded is checked as apply checks it before anything is created in
  // it: a manifest apply would refuse is refused at the start, and leaves no state dir behind.
  await checkBeforeCreating(opts.stateDir, { given: first.manifest }, { resolve: contentOf });
  const stateDir = await openStateDir(opts.stateDir);

  const lockWaitMs = opts.lockWaitMs ?? Math.max(3000, opts.intervalMs);
  // Recorded under the lock, so that a destroy or down looking for holders never misses this one.
  const lock = await acquireLock(stateDir, { command: 'watch', waitMs: lockWaitMs, signal: opts.signal, onWait: (h) => reporter.notify({ code: 'lock.waiting', pid: h.pid, command: h.command, since: h.since }) });
  let claim;
  try {
    claim = await claimHolder(stateDir, 'watch', { manifest: resolvePath(opts.file) });
  } finally {
    await lock.release();
  }
  // SIGTERM and SIGINT (opts.signal), or a stop request from destroy or down --force.
  const stopping = new AbortController();
  const signal = AbortSignal.any([opts.signal, stopping.signal]);
  claim.watchForStop((request) => {
    reporter.notify({ code: 'holder.stop-requested', kind: 'watch', by: request.by, pid: request.byPid });
    stopping.abort();
  });

  let ownKernel: KernelPort | null = null;
  let kernel = opts.kernel;
  try {
    if (!kernel) kernel = ownKernel = await openSessionKernel(opts.backend, stateDir, reporter);
    // Every run's session closes its kernel; the watcher's one kernel lives as long as the watcher.
    const shared = borrowed(kernel);
    await ensureRequestsDir(stateDir);
    const autoextender = new Autoextender(opts.autoextend ?? DEFAULT_AUTOEXTEND, reporter);
    // Until a session has read the log: the dm name this pool name is given (the first run corrects it).
    let poolDmName: string | null = dmIdentity(first.manifest.pool.name, 'pool').dmName;
    let declinedManifest: string | null = null;
    let steps = 0;
    const poolCounter: LookedAt = { value: null };
    let lastRecorded: string | null = null;

    const runOnce = async (_why: Trigger[], signal: AbortSignal): Promise<void> => {
      steps = 0;
      const reading = await follower.read();
      let desired: Manifest | null;
      if (reading.kind === 'invalid') {
        if (reading.firstReport) reporter.notify({ code: 'watch.manifest-invalid', file: opts.file, error: reading.error.message, keeping: reading.kept ? 'last-valid' : 'recorded' });
        desired = reading.kept;
      } else desired = reading.manifest;
      // An edit's sources are read before the lock is taken, as apply does.
      if (desired && desiredDigestOf(desired) !== lastRecorded) await contentOf(desired);

      const session = await Session.open({ stateDir: opts.stateDir, backend: opts.backend, reporter, mutate: true, command: 'watch', kernel: shared, lockWaitMs });
      try {
        await completePendingGrows(session, reporter);
        const recorded = session.state.desired;
        lastRecorded = desiredDigestOf(recorded);
        desired ??= recorded;
        if (!desired) return;
        poolDmName = poolIdentity(session.state, desired.pool.name).dmName;
        // An edit is read, refused or accepted, and resolved by apply's own road (app/desired.ts).
        const edit = desiredDigestOf(desired);
        const content = edit === lastRecorded && session.state.content ? session.state.content : (await readDesired({ given: desired }, session.state, { resolve: contentOf })).content;
        // Content that differs from the recorded content is an edit too: its layers are new devices.
        const alreadyConfirmed = edit === lastRecorded && sameDesired(content, session.state.content);
        const declined: { plan: Plan | null } = { plan: null };
        try {
          const result = await reconcile(session, {
            desired,
            content,
            mode: 'converge',
            command: 'watch',
            reporter,
            confirm: async (plan) => {
              if (alreadyConfirmed) return true;
              declined.plan = plan;
              return false;
            },
            recordDesired: true,
            signal,
          });
          steps += result.steps;
          declinedManifest = null;
        } catch (e) {
          const plan = declined.plan;
          if (!(plan && e instanceof UserError && e.code === 'E_NOT_CONFIRMED')) throw e;
          if (declinedManifest !== edit) {
            const deletes = plan.steps.filter((s) => s.impact === 'destroy').map((s) => s.target);
            reporter.notify({ code: 'watch.needs-confirmation', file: opts.file, deletes });
            declinedManifest = edit;
          }
          if (recorded && !signal.aborted) {
            const result = await reconcile(session, { desired: recorded, mode: 'converge', command: 'watch', reporter, confirm: async () => true, recordDesired: false, signal });
            steps += result.steps;
          }
        }
        if (signal.aborted) return;
        // The check looks at the pool as it is now, so the counter as of now has been looked at:
        // the poll (which waits while a run is busy) reports only events after it.
        const counter = (await shared.info(poolDmName))?.eventNr;
        if (counter !== undefined) poolCounter.value = counter;
        await autoextender.check(session);
        const view = await readStatus(session);
        metrics?.observeStatus(view);
        opts.onStatus?.(view);
      } finally {
        await session.close();
      }
    };

    const triggers = merge(
      startAndInterval$(opts.intervalMs),
      manifestChanges$(opts.file, { settleMs: opts.settleMs }),
      opts.hangups ?? processSignal$('SIGHUP'),
      requests$(stateDir, { scanMs: opts.intervalMs }),
      poolEvents$(async () => {
        // Read between runs only: a run in progress is followed by a look at the counter anyway.
        if (loop?.busy || !poolDmName) return null;
        return (await shared.info(poolDmName))?.eventNr ?? null;
      }, opts.poolPollMs ?? Math.min(opts.intervalMs, 5000), poolCounter),
    );

    reporter.notify({ code: 'watch.started', file: opts.file, intervalMs: opts.intervalMs, metricsUrl: opts.metricsUrl ?? null });
    let loop: ReturnType<typeof startLoop> | undefined;
    loop = startLoop({
      triggers,
      run: runOnce,
      signal,
      backoff: opts.backoff ?? backoffForInterval(opts.intervalMs),
      onRunStart: ({ run, why }) => reporter.notify({ code: 'watch.run', run, reasons: [...new Set(why.map((t) => t.kind))] }),
      onRunEnd: (end) => {
        metrics?.observeRun(end.ok, end.durationMs);
        if (end.ok) reporter.notify({ code: 'watch.run-done', run: end.run, durationMs: Math.round(end.durationMs), steps });
        else reporter.notify({ code: 'watch.run-failed', run: end.run, error: errorText(end.error), failures: end.failures, retryInMs: end.retryInMs ?? 0 });
      },
    });
    const summary = await loop.finished;
    reporter.notify({ code: 'watch.stopped', runs: summary.runs, failures: summary.failures });
    return summary;
  } finally {
    await ownKernel?.close();
    await claim.release();
  }
}

function errorText(e: unknown): string {
  if (e instanceof ThinlayerError) return e.message;
  // A failed system call (the state dir removed, a full disk) is the host's trouble, not a bug.
  const host = systemCallError(e);
  if (host) return host.message;
  return e instanceof Error ? `internal error (a bug in thinlayer, please report it): ${e.stack ?? e.message}` : String(e);
}

/** The kernel with close() made a no-op, for sessions that must not end the watcher's kernel. */
function borrowed(kernel: KernelPort): KernelPort {
  return new Proxy(kernel, {
    get(target, prop, receiver) {
      if (prop === 'close') return async () => undefined;
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}
