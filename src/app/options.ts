// The options every use case takes, and the session each opens from them. Plain data in: a state
// dir, a backend (or a kernel), a message port and a signal.

import type { KernelPort } from '../kernel/kernel-port.ts';
import type { BackendChoice } from '../kernel/select.ts';
import type { Plan } from '../model/step-contract.ts';
import { Session, type SessionOptions } from '../engine/session.ts';
import { silentReporter, type Reporter } from '../messages/message-port.ts';

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

export interface TakeDownOptions extends MutateOptions {
  /** destroy and down: ask a running snapshotter or watch to stop and wait for it, instead of refusing (holders-check.ts). */
  force?: boolean;
}

export function reporterOf(opts: CommonOptions): Reporter {
  return opts.reporter ?? silentReporter;
}

export function sessionOptions(opts: CommonOptions, mutate: boolean, command: string): SessionOptions {
  return { stateDir: opts.stateDir, backend: opts.backend ?? 'auto', reporter: reporterOf(opts), mutate, command, kernel: opts.kernel, signal: opts.signal };
}

/** Opens a session (the lock when `mutate`), runs `work` in it and closes it. */
export async function withSession<T>(opts: CommonOptions, mutate: boolean, command: string, work: (s: Session) => Promise<T>): Promise<T> {
  const session = await Session.open(sessionOptions(opts, mutate, command));
  try {
    return await work(session);
  } finally {
    await session.close();
  }
}

/** `yes` confirms; otherwise the caller's question, or a refusal when there is none. */
export function confirmer(opts: MutateOptions): (plan: Plan) => Promise<boolean> {
  return async (plan) => (opts.yes ? true : opts.confirm ? opts.confirm(plan) : false);
}
