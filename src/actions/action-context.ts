// What an action is given: the kernel, the state dir, the pool, the fence, and the run's memo.
// Its own module so that actions, the device memo and layer commits all depend on it, and not on
// each other.

import type { KernelPort, DmInfo } from '../kernel/kernel-port.ts';
import type { StateDir } from '../events/state-dir.ts';
import type { Reporter } from '../messages/message-port.ts';
import type { StepOp, StepArgs, StepResult } from '../model/step-contract.ts';

/** Facts shared by the steps of one run (the runner clears them when the pool changes; see device-memo.ts). */
export interface RunMemo {
  poolDevT?: string;
  devices?: Map<string, DmInfo | null>;
  allOwnedListed?: boolean;
  unsure?: Set<string>;
  /** Thin ids a collision moved, by dm name: the run's later steps use them (see createFenced in actions.ts). */
  reallocated?: Map<string, number>;
}

export interface ActionContext {
  kernel: KernelPort;
  stateDir: StateDir;
  /** The pool's dm name, for thin tables and messages. */
  poolDmName: string;
  /** The pool transaction id read just before a metadata step (the fence), when the step has one. */
  txid?: number;
  /** Progress of long steps (layer content) goes here. */
  reporter?: Reporter;
  /** Long steps stop early when this is aborted. */
  signal?: AbortSignal;
  memo?: RunMemo;
}

/** The imperative half of one op: its arguments and result are the op's contract (src/model/step-contract.ts). */
export type Action<O extends StepOp> = (ctx: ActionContext, args: StepArgs<O>) => Promise<StepResult<O>>;

/** An action for every op: a table missing one does not compile. */
export type ActionTable = { [O in StepOp]: Action<O> };
