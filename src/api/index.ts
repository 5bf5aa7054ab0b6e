// The library API: the same operations as the CLI, for programs that embed thinlayer. Each is the
// application's use case for its verb (src/app, one file a verb): each call opens a session (the
// lock for those that mutate), does its work and closes it.

import type { Manifest } from '../model/manifest.ts';
import type { ManifestSource } from '../manifest/load.ts';
import type { KernelPort } from '../kernel/kernel-port.ts';
import type { BackendChoice } from '../kernel/select.ts';
import type { Plan } from '../model/step-contract.ts';
import type { RunResult } from '../reconcile/reconcile.ts';
import type { StatusView } from '../app/status-view.ts';
import type { GrowRequest, GrowResult } from '../actions/grow-pool.ts';
import { planFor } from '../app/plan.ts';

export type { CommonOptions, MutateOptions, TakeDownOptions } from '../app/options.ts';
export { apply } from '../app/apply.ts';
export { planFor };
/** `plan` is planFor: what apply (given a manifest) or up (given null) would do. */
export { planFor as plan };
export { up } from '../app/up.ts';
export { down } from '../app/down.ts';
export { destroy } from '../app/destroy.ts';
export { growPoolTo } from '../app/pool-grow.ts';
export { status, statusWithPlan } from '../app/status.ts';
export { openStateDir, type StateDir } from '../events/state-dir.ts';
export { UserError, KernelError, StateError, InternalError, ThinlayerError } from '../errors/index.ts';
export { CollectingReporter, silentReporter, type Reporter, type Message } from '../messages/message-port.ts';
export type { ManifestArg } from '../app/desired.ts';
export type { RunResult, StatusView, Plan, Manifest, ManifestSource, GrowRequest, GrowResult, BackendChoice, KernelPort };
export { Session } from '../engine/session.ts';
