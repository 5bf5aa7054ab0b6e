// The library API: the same operations as the CLI, for programs that embed thinlayer.
// Each call opens a session (the lock for those that mutate), does its work and closes it.

import type { Manifest, Backing } from '../model/manifest.ts';
import type { ManifestSource } from '../manifest/load.ts';
import type { KernelPort } from '../kernel/kernel-port.ts';
import type { BackendChoice } from '../kernel/select.ts';
import { worstImpact, type Plan, type Step, type PoolGrowArgs } from '../model/step-contract.ts';
import { plan as makePlan } from '../plan/planner.ts';
import { Session, type SessionOptions } from '../engine/session.ts';
import { inputOf, readDesired, type ManifestArg } from '../app/desired.ts';
import { stateDirExists, withCheckedSession } from '../app/checked-session.ts';
import { reconcile, type RunResult } from '../reconcile/reconcile.ts';
import { observeSystem } from '../engine/observe-system.ts';
import { checkMountpointsOnHost } from '../host/mountpoint-check.ts';
import { silentReporter, type Reporter } from '../messages/message-port.ts';
import { readStatus, type StatusView } from './status.ts';
import { ArchiveDigestFile } from '../layers/archive-digests.ts';
import { currentPoolSpec, poolIdentity } from '../lifecycle/current-pool.ts';
import { growPool, runPoolGrow, type GrowRequest, type GrowResult } from '../actions/pool-grow.ts';
import { UserError } from '../errors/index.ts';
import { stat } from 'node:fs/promises';
import { poolGrowth, poolGrowArgs, poolGrowStep } from '../plan/changes.ts';
import { clearHolders, refuseHolders } from './holders-check.ts';
import { readLogAgain } from '../doctor/second-look.ts';
import { settlePlanInFlight } from '../doctor/in-flight.ts';
import { readLockHolder, isLockHolderAlive } from '../events/lock.ts';

export interface CommonOptions {
  stateDir: string;
  backend?: BackendChoice;
  reporter?: Reporter;
  /** Use this kernel instead of choosing one. */
  kernel?: KernelPort;
  signal?: AbortSignal;
}

export interface MutateOptions extends CommonOptions {
  /** Confirm steps that delete devices without asking. */
  yes?: boolean;
  /** Asked when a plan deletes devices and `yes` is not set; defaults to refusing. */
  confirm?: (plan: Plan) => Promise<boolean>;
}

function sessionOptions(opts: CommonOptions, mutate: boolean, command: string): SessionOptions {
  return { stateDir: opts.stateDir, backend: opts.backend ?? 'auto', reporter: opts.reporter ?? silentReporter, mutate, command, kernel: opts.kernel, signal: opts.signal };
}

export interface TakeDownOptions extends MutateOptions {
  /** destroy and down: ask a running snapshotter or watch to stop and wait for it, instead of refusing (holders-check.ts). */
  force?: boolean;
}

async function withSession<T>(opts: CommonOptions, mutate: boolean, command: string, work: (s: Session) => Promise<T>): Promise<T> {
  const session = await Session.open(sessionOptions(opts, mutate, command));
  try {
    return await work(session);
  } finally {
    await session.close();
  }
}

/** A raised data.size or metadata.size: the growth, and the pool.grow step that carries it out (the step `pool grow` logs). */
async function growthFor(s: Session, desired: Manifest): Promise<{ args: PoolGrowArgs; step: Step } | null> {
  const size = async (b: Backing) => (b.kind === 'file' ? ((await stat(s.stateDir.path(b.file)).catch(() => null))?.size ?? null) : null);
  const fileBytes = { data: await size(desired.pool.data), metadata: await size(desired.pool.metadata) };
  const growth = poolGrowth(s.state, desired, fileBytes);
  if (!growth) return null;
  const args = poolGrowArgs(poolIdentity(s.state, desired.pool.name), desired.pool, growth, fileBytes);
  return { args, step: poolGrowStep(args) };
}

function confirmer(opts: MutateOptions): (plan: Plan) => Promise<boolean> {
  return async (plan) => (opts.yes ? true : opts.confirm ? opts.confirm(plan) : false);
}

/** Record the manifest as the desired state and converge to it. */
export async function apply(manifest: ManifestArg, opts: MutateOptions): Promise<RunResult> {
  const input = await inputOf(manifest);
  // Checked (manifest, refusals, every layer source) before anything is created or recorded.
  return withCheckedSession(sessionOptions(opts, true, 'apply'), input, async (s, { desired, digest, content }) => {
    // A raised data.size or metadata.size grows the pool first, through `pool grow`'s own path; when
    // the rest of the plan deletes, only once that plan is confirmed (asked once, growth included).
    let confirm = confirmer(opts);
    const grow = await growthFor(s, desired);
    if (grow) {
      const observed = await observeSystem(s.kernel, s.stateDir, desired.pool, s.state);
      const rest = makePlan({ desired, state: s.state, observed, mode: 'converge', content });
      if (rest.impact === 'destroy') {
        const steps = [grow.step, ...rest.steps];
        if (!(await confirm({ ...rest, steps, impact: worstImpact(steps) }))) throw new UserError('the plan deletes devices and was not confirmed: nothing was changed (re-run with --yes to confirm)', { path: '--yes' }, 'E_NOT_CONFIRMED');
        confirm = async () => true;
      }
      await runPoolGrow(s, grow.args, { reporter: opts.reporter, command: 'apply' });
    }
    return reconcile(s, { desired, desiredDigest: digest, content, mode: 'converge', command: 'apply', reporter: opts.reporter ?? silentReporter, confirm, recordDesired: true, signal: opts.signal });
  });
}

/** What apply would do, without doing it (no lock, no event). */
export async function planFor(manifest: ManifestArg | null, opts: CommonOptions & { mode?: 'converge' | 'down' }): Promise<Plan> {
  const input = manifest === null ? null : await inputOf(manifest);
  return withSession(opts, false, 'plan', async (s) => {
    // The same checks as apply's (app/desired.ts). Archives hashed by an earlier apply are looked
    // up, not hashed again; plan writes nothing.
    const ready = input === null ? null : await readDesired(input, s.state, { digests: await ArchiveDigestFile.open(s.stateDir) });
    const desired = ready?.desired ?? null;
    const content = ready?.content;
    const target = input === null ? s.state.desired : desired;
    const observed = await observeSystem(s.kernel, s.stateDir, currentPoolSpec(s.state, target), s.state);
    await checkMountpointsOnHost(s.kernel, s.stateDir.root, target, opts.mode ?? 'converge', observed.devices);
    const planned = makePlan({ desired: target, state: s.state, observed, mode: opts.mode ?? 'converge', content: content ?? s.state.content ?? undefined });
    const grow = desired && (opts.mode ?? 'converge') === 'converge' ? await growthFor(s, desired) : null;
    if (!grow) return planned;
    const steps = [grow.step, ...planned.steps];
    return { ...planned, steps, impact: worstImpact(steps) };
  });
}

/** Converge to the desired state already recorded (after a reboot, a crash or `down`). */
export async function up(opts: MutateOptions): Promise<RunResult | null> {
  // No state dir: nothing recorded, nothing to bring up, and nothing is created to say so.
  if (!(await stateDirExists(opts.stateDir))) return null;
  return withSession(opts, true, 'up', async (s) => {
    if (!s.state.desired && !s.state.poolSpec) return null;
    return reconcile(s, { desired: s.state.desired, mode: 'converge', command: 'up', reporter: opts.reporter ?? silentReporter, confirm: confirmer(opts), recordDesired: false, signal: opts.signal });
  });
}

/** Unmount and deactivate everything, keep all data; `up` brings it back. Refused while a snapshotter or watch runs, unless `force`. */
export async function down(opts: TakeDownOptions): Promise<RunResult | null> {
  if (!(await stateDirExists(opts.stateDir))) return null;
  await clearHolders('down', { stateDir: opts.stateDir, reporter: opts.reporter ?? silentReporter, force: opts.force === true, signal: opts.signal });
  return withSession(opts, true, 'down', async (s) => {
    await refuseHolders('down', s.stateDir);
    if (!s.state.desired) return null;
    return reconcile(s, { desired: s.state.desired, mode: 'down', command: 'down', reporter: opts.reporter ?? silentReporter, confirm: confirmer(opts), recordDesired: false, signal: opts.signal });
  });
}

/** Delete every device, the pool and its backing files. Refused while a snapshotter or watch runs, unless `force`. */
/** null when nothing is recorded in the state dir (it does not exist): nothing is created to say so. */
export async function destroy(opts: TakeDownOptions): Promise<RunResult | null> {
  if (!(await stateDirExists(opts.stateDir))) return null;
  await clearHolders('destroy', { stateDir: opts.stateDir, reporter: opts.reporter ?? silentReporter, force: opts.force === true, signal: opts.signal });
  return withSession(opts, true, 'destroy', async (s) => {
    await refuseHolders('destroy', s.stateDir);
    return reconcile(s, { desired: null, mode: 'converge', command: 'destroy', reporter: opts.reporter ?? silentReporter, confirm: confirmer(opts), recordDesired: true, signal: opts.signal });
  });
}

/** Grow a file-backed pool: extend its sparse files, resize the loop devices, reload the pool table. */
/** Grow a file-backed pool; null when nothing is recorded in the state dir (like up). */
export async function growPoolTo(request: GrowRequest, opts: CommonOptions): Promise<GrowResult | null> {
  if (!(await stateDirExists(opts.stateDir))) return null;
  return withSession(opts, true, 'pool grow', async (s) => {
    if (!s.state.desired && !s.state.poolSpec) return null;
    return growPool(s, request, { reporter: opts.reporter });
  });
}

export async function status(opts: CommonOptions): Promise<StatusView> {
  return withSession(opts, false, 'status', (s) => readStatus(s));
}

/**
 * The status and what `up` would change, from one session and one look at the kernel
 * (`status --detailed-exitcode`: drift is what the planner would do, not a second opinion).
 */
export async function statusWithPlan(opts: CommonOptions): Promise<{ view: StatusView; plan: Plan }> {
  return withSession(opts, false, 'status', async (s) => {
    const observed = await observeSystem(s.kernel, s.stateDir, currentPoolSpec(s.state, s.state.desired), s.state);
    const plan = makePlan({ desired: s.state.desired, state: s.state, observed, mode: 'converge', content: s.state.content ?? undefined });
    const view = await readStatus(s, observed);
    // Beside a busy writer (the snapshotter): the log read again after the kernel, and what work
    // under way explains is in flight, not drift (src/doctor/in-flight.ts).
    const later = await readLogAgain(s.stateDir, s.state.lastSeq);
    if (!later) return { view, plan };
    const holder = await readLockHolder(s.stateDir);
    // status never holds the lock: any live holder is another session's run.
    const busy = holder !== null && (await isLockHolderAlive(holder));
    const settled = settlePlanInFlight(plan, s.state, later, observed.pool?.status.transactionId, busy);
    const pendingSteps = busy ? 0 : settled.stillPending;
    return { view: { ...view, pendingSteps, inFlightSteps: view.pendingSteps - pendingSteps }, plan: settled.plan };
  });
}

/** `plan` is planFor: what apply (given a manifest) or up (given null) would do. */
export { planFor as plan };
export { openStateDir, type StateDir } from '../events/state-dir.ts';
export { UserError, KernelError, StateError, InternalError, ThinlayerError } from '../errors/index.ts';
export { CollectingReporter, silentReporter, type Reporter, type Message } from '../messages/message-port.ts';
export type { ManifestArg } from '../app/desired.ts';
export type { RunResult, StatusView, Plan, Manifest, ManifestSource, GrowRequest, GrowResult, BackendChoice, KernelPort };
export { Session };
