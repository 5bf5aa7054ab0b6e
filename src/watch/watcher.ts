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
import { openStateDir, type StateDir } from '../events/state-dir.ts';
import { acquireLock } from '../events/lock.ts';
import { claimHolder, type HolderClaim } from '../events/holders.ts';
import type { BackendChoice } from '../kernel/select.ts';
import type { KernelPort } from '../kernel/kernel-port.ts';
import type { Manifest } from '../model/manifest.ts';
import type { Plan } from '../model/step-contract.ts';
import { Session, openSessionKernel } from '../engine/session.ts';
import { reconcile } from '../reconcile/reconcile.ts';
import { resolveContent } from '../layers/resolve-content.ts';
import { readDesired, type DesiredState } from '../app/desired.ts';
import { convergeTo } from '../app/converge.ts';
import { checkBeforeCreating } from '../app/checked-session.ts';
import type { LayerContent } from '../model/layer-content.ts';
import { completePendingGrows } from '../actions/grow-pool.ts';
import { readStatus, type StatusView } from '../app/status-view.ts';
import { dmIdentity } from '../domain/names.ts';
import { poolIdentity } from '../lifecycle/current-pool.ts';
import { desiredDigestOf, sameDesired } from '../plan/desired-state.ts';
import { systemCallError, ThinlayerError, UserError } from '../errors/index.ts';
import type { Message, Reporter } from '../messages/message-port.ts';
import { startLoop, type LoopSummary, type RunningLoop } from './watch-loop.ts';
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

  const reporter = countingGrows(opts.reporter, opts.metrics);
  const content = new WatchedContent(opts.file, reporter);
  // A state dir with nothing recorded is checked as apply checks it before anything is created in
  // it: a manifest apply would refuse is refused at the start, and leaves no state dir behind.
  await checkBeforeCreating(opts.stateDir, { given: first.manifest }, { resolve: (m) => content.of(m) });
  const stateDir = await openStateDir(opts.stateDir);
  const lockWaitMs = opts.lockWaitMs ?? Math.max(3000, opts.intervalMs);
  const claim = await claimWatch(stateDir, opts, reporter, lockWaitMs);
  // SIGTERM and SIGINT (opts.signal), or a stop request from destroy or down --force.
  const stopping = new AbortController();
  const signal = AbortSignal.any([opts.signal, stopping.signal]);
  claim.watchForStop((request) => {
    reporter.notify({ code: 'holder.stop-requested', kind: 'watch', by: request.by, pid: request.byPid });
    stopping.abort();
  });

  let ownKernel: KernelPort | null = null;
  try {
    if (!opts.kernel) ownKernel = await openSessionKernel(opts.backend, stateDir, reporter);
    const kernel = opts.kernel ?? (ownKernel as KernelPort);
    await ensureRequestsDir(stateDir);
    // Every run's session closes its kernel; the watcher's one kernel lives as long as the watcher.
    const runs = new WatchRuns({ opts, reporter, follower, content, kernel: borrowed(kernel), lockWaitMs, first: first.manifest });
    return await loopUntilStopped(opts, stateDir, runs, reporter, signal);
  } finally {
    await ownKernel?.close();
    await claim.release();
  }
}

/** The reporter watch's runs use: the opts' own, with each pool growth counted in the metrics. */
function countingGrows(reporter: Reporter, metrics: WatchMetrics | undefined): Reporter {
  return {
    notify(m: Message) {
      if (m.code === 'pool.grown') metrics?.countPoolGrow();
      reporter.notify(m);
    },
  };
}

/** Records this process as the state dir's watch, under the lock, so that a destroy or down looking for holders never misses it. */
async function claimWatch(stateDir: StateDir, opts: WatchOptions, reporter: Reporter, lockWaitMs: number): Promise<HolderClaim> {
  const lock = await acquireLock(stateDir, {
    command: 'watch',
    waitMs: lockWaitMs,
    signal: opts.signal,
    onWait: (h) => reporter.notify({ code: 'lock.waiting', pid: h.pid, command: h.command, since: h.since }),
  });
  try {
    return await claimHolder(stateDir, 'watch', { manifest: resolvePath(opts.file) });
  } finally {
    await lock.release();
  }
}

/**
 * Layer content is resolved (every source hashed) only for a manifest that differs from the
 * recorded one: the recorded manifest's content is what apply resolved and recorded with it, so a
 * drift check costs no hashing, and an apply that re-read changed sources is not undone.
 */
class WatchedContent {
  private resolved: { manifest: string; content: LayerContent } | null = null;
  private readonly reportedSources = new Set<string>();

  constructor(
    private readonly file: string,
    private readonly reporter: Reporter,
  ) {}

  async of(manifest: Manifest): Promise<LayerContent> {
    const key = desiredDigestOf(manifest);
    if (this.resolved?.manifest !== key) {
      for (const u of await untrustedSources(manifest)) {
        const id = `${u.layer}\0${u.source}\0${u.why}`;
        if (!this.reportedSources.has(id)) this.reporter.notify({ code: 'watch.untrusted-source', file: this.file, ...u });
        this.reportedSources.add(id);
      }
      this.resolved = { manifest: key, content: await resolveContent(manifest) };
    }
    return this.resolved.content;
  }
}

interface WatchRunsContext {
  opts: WatchOptions;
  reporter: Reporter;
  follower: ManifestFollower;
  content: WatchedContent;
  kernel: KernelPort;
  lockWaitMs: number;
  first: Manifest;
}

/**
 * One run a trigger causes: the manifest read (an invalid edit keeps the last valid one), any
 * interrupted pool grow finished, the desired state converged to by apply's own road
 * (app/converge.ts: refusals, the pool's growth, the reconcile), then the pool's use checked.
 */
class WatchRuns {
  /** Until a session has read the log: the dm name this pool name is given (the first run corrects it). */
  poolDmName: string | null;
  /** The pool's event counter as of the last look (the poll reports only events after it). */
  readonly poolCounter: LookedAt = { value: null };
  /** Steps taken by the current run. */
  steps = 0;
  private declinedManifest: string | null = null;
  private lastRecorded: string | null = null;
  private readonly autoextender: Autoextender;

  constructor(private readonly ctx: WatchRunsContext) {
    this.poolDmName = dmIdentity(ctx.first.pool.name, 'pool').dmName;
    this.autoextender = new Autoextender(ctx.opts.autoextend ?? DEFAULT_AUTOEXTEND, ctx.reporter);
  }

  /** The pool device's info, as the poll between runs reads it. */
  readonly kernelInfo = (dmName: string) => this.ctx.kernel.info(dmName);

  readonly run = async (_why: Trigger[], signal: AbortSignal): Promise<void> => {
    this.steps = 0;
    let desired = await this.readManifest();
    const { opts, reporter, kernel, lockWaitMs } = this.ctx;
    const session = await Session.open({ stateDir: opts.stateDir, backend: opts.backend, reporter, mutate: true, command: 'watch', kernel, lockWaitMs });
    try {
      await completePendingGrows(session, reporter);
      const recorded = session.state.desired;
      this.lastRecorded = desiredDigestOf(recorded);
      desired ??= recorded;
      if (!desired) return;
      this.poolDmName = poolIdentity(session.state, desired.pool.name).dmName;
      await this.converge(session, desired, recorded, signal);
      if (signal.aborted) return;
      await this.afterRun(session);
    } finally {
      await session.close();
    }
  };

  /** The manifest as it is now (or the last valid one); an edit's sources are read before the lock is taken, as apply does. */
  private async readManifest(): Promise<Manifest | null> {
    const { follower, reporter, opts, content } = this.ctx;
    const reading = await follower.read();
    let desired: Manifest | null;
    if (reading.kind === 'invalid') {
      if (reading.firstReport)
        reporter.notify({ code: 'watch.manifest-invalid', file: opts.file, error: reading.error.message, keeping: reading.kept ? 'last-valid' : 'recorded' });
      desired = reading.kept;
    } else desired = reading.manifest;
    if (desired && desiredDigestOf(desired) !== this.lastRecorded) await content.of(desired);
    return desired;
  }

  /** The recorded manifest as recorded; an edit read, refused or accepted, and resolved by apply's own road (app/desired.ts). */
  private async desiredState(session: Session, desired: Manifest): Promise<DesiredState> {
    if (desiredDigestOf(desired) === this.lastRecorded && session.state.content) return { desired, digest: null, content: session.state.content };
    return readDesired({ given: desired }, session.state, { resolve: (m) => this.ctx.content.of(m) });
  }

  /**
   * Converges to the manifest. An edit whose plan deletes devices is declined (said once per edit),
   * and the recorded desired state is converged to instead: its deletions were confirmed when it was recorded.
   */
  private async converge(session: Session, desired: Manifest, recorded: Manifest | null, signal: AbortSignal): Promise<void> {
    const { reporter, opts } = this.ctx;
    const ready = await this.desiredState(session, desired);
    const edit = desiredDigestOf(desired);
    // Content that differs from the recorded content is an edit too: its layers are new devices.
    const alreadyConfirmed = edit === this.lastRecorded && sameDesired(ready.content, session.state.content);
    const declined: { plan: Plan | null } = { plan: null };
    const confirm = async (plan: Plan) => {
      if (alreadyConfirmed) return true;
      declined.plan = plan;
      return false;
    };
    try {
      this.steps += (await convergeTo(session, ready, { command: 'watch', reporter, confirm, signal })).steps;
      this.declinedManifest = null;
    } catch (e) {
      const plan = declined.plan;
      if (!(plan && e instanceof UserError && e.code === 'E_NOT_CONFIRMED')) throw e;
      if (this.declinedManifest !== edit) {
        const deletes = plan.steps.filter((s) => s.impact === 'destroy').map((s) => s.target);
        reporter.notify({ code: 'watch.needs-confirmation', file: opts.file, deletes });
        this.declinedManifest = edit;
      }
      if (recorded && !signal.aborted) {
        const result = await reconcile(session, {
          desired: recorded,
          mode: 'converge',
          command: 'watch',
          reporter,
          confirm: async () => true,
          recordDesired: false,
          signal,
        });
        this.steps += result.steps;
      }
    }
  }

  /** The pool's use checked (warnings, autoextend) and the status reported. */
  private async afterRun(session: Session): Promise<void> {
    const { kernel, opts } = this.ctx;
    // The check looks at the pool as it is now, so the counter as of now has been looked at:
    // the poll (which waits while a run is busy) reports only events after it.
    const counter = (await kernel.info(this.poolDmName!))?.eventNr;
    if (counter !== undefined) this.poolCounter.value = counter;
    await this.autoextender.check(session);
    const view = await readStatus(session);
    opts.metrics?.observeStatus(view);
    opts.onStatus?.(view);
  }
}

/** The triggers merged, and the loop run on them until the signal is aborted. */
async function loopUntilStopped(opts: WatchOptions, stateDir: StateDir, runs: WatchRuns, reporter: Reporter, signal: AbortSignal): Promise<LoopSummary> {
  const { metrics } = opts;
  let loop: RunningLoop | undefined;
  const triggers = merge(
    startAndInterval$(opts.intervalMs),
    manifestChanges$(opts.file, { settleMs: opts.settleMs }),
    opts.hangups ?? processSignal$('SIGHUP'),
    requests$(stateDir, { scanMs: opts.intervalMs }),
    poolEvents$(
      async () => {
        // Read between runs only: a run in progress is followed by a look at the counter anyway.
        if (loop?.busy || !runs.poolDmName) return null;
        return (await runs.kernelInfo(runs.poolDmName))?.eventNr ?? null;
      },
      opts.poolPollMs ?? Math.min(opts.intervalMs, 5000),
      runs.poolCounter,
    ),
  );
  reporter.notify({ code: 'watch.started', file: opts.file, intervalMs: opts.intervalMs, metricsUrl: opts.metricsUrl ?? null });
  loop = startLoop({
    triggers,
    run: runs.run,
    signal,
    backoff: opts.backoff ?? backoffForInterval(opts.intervalMs),
    onRunStart: ({ run, why }) => reporter.notify({ code: 'watch.run', run, reasons: [...new Set(why.map((t) => t.kind))] }),
    onRunEnd: (end) => {
      metrics?.observeRun(end.ok, end.durationMs);
      if (end.ok) reporter.notify({ code: 'watch.run-done', run: end.run, durationMs: Math.round(end.durationMs), steps: runs.steps });
      else reporter.notify({ code: 'watch.run-failed', run: end.run, error: errorText(end.error), failures: end.failures, retryInMs: end.retryInMs ?? 0 });
    },
  });
  const summary = await loop.finished;
  reporter.notify({ code: 'watch.stopped', runs: summary.runs, failures: summary.failures });
  return summary;
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
