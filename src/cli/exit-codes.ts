// The CLI's exit codes, in one place: 0 done, 1 failed (a kernel or state error, a blocked plan),
// 2 bad input (a manifest, a flag, a directory that is not a state directory), and 128 + the
// signal's number when SIGINT (130) or SIGTERM (143) interrupted a run between steps.

export type StopSignal = 'SIGINT' | 'SIGTERM';

export const SIGNAL_EXIT: Record<StopSignal, number> = { SIGINT: 130, SIGTERM: 143 };

/** The exit code of a run that `signal` interrupted: the signal is its abort reason (see withSignals in main.ts). */
export function interruptedExitCode(signal: AbortSignal | undefined): number {
  return SIGNAL_EXIT[signal?.reason === 'SIGTERM' ? 'SIGTERM' : 'SIGINT'];
}
