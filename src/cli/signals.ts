// How a command's run meets SIGINT and SIGTERM, and the exit code a stopped run ends with.

import { SIGNAL_EXIT, type StopSignal } from './exit-codes.ts';

/** 0 for a finished run; 128 + the signal's number for one a signal interrupted. */
export function exitCodeOf(outcome: string, signal: StopSignal | null): number {
  return outcome === 'interrupted' ? SIGNAL_EXIT[signal ?? 'SIGINT'] : 0;
}

/**
 * SIGINT and SIGTERM let the current step finish and be recorded, then stop: the work sees its
 * signal aborted. Each is caught once: a second one ends the process as the signal does by default,
 * and the step it cuts short is left in doubt for the next run to settle, as after a crash.
 */
export async function withSignals<T>(work: (signal: AbortSignal) => Promise<T>): Promise<{ result: T; signal: StopSignal | null }> {
  const controller = new AbortController();
  let received: StopSignal | null = null;
  const stop = (name: StopSignal) => {
    received ??= name;
    controller.abort(name);
  };
  const onInt = () => stop('SIGINT');
  const onTerm = () => stop('SIGTERM');
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  try {
    const result = await work(controller.signal);
    return { result, signal: received };
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}
