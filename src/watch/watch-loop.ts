// The run loop: triggers in, one reconcile at a time out. A trigger that arrives while a run is in
// progress is remembered (the dirty flag is the `pending` list), and when the run ends the loop runs
// once more for all of them together: however many arrive, exactly one more run. A failed run is
// reported and retried after a backoff delay; it never ends the loop. Aborting the signal lets the
// current run finish (it gets the same signal, and the reconciler stops between steps), then the
// loop ends.
//
// The reconcile is a parameter, so the loop is tested with a fake one and no kernel at all.

import { Observable, exhaustMap, takeUntil, tap, type Subscription } from 'rxjs';
import { setTimeout as sleep } from 'node:timers/promises';
import { backoffDelay, type BackoffPolicy } from './backoff.ts';
import { aborted$ } from './triggers.ts';
import type { Trigger } from './triggers.ts';

export interface RunStart {
  /** 1 for the first run of this loop. */
  run: number;
  /** Every trigger this run answers (several when they arrived during the previous run). */
  why: Trigger[];
}

export interface RunEnd extends RunStart {
  ok: boolean;
  error?: unknown;
  durationMs: number;
  /** Consecutive failures so far, this one included (0 after a success). */
  failures: number;
  /** After a failure: when the retry comes. */
  retryInMs?: number;
}

export interface LoopOptions {
  triggers: Observable<Trigger>;
  /** One reconcile. A rejection is a failed run, retried with backoff. */
  run: (why: Trigger[], signal: AbortSignal) => Promise<void>;
  /** Aborting stops the loop after the current run, which is handed the same signal. */
  signal: AbortSignal;
  backoff: BackoffPolicy;
  /** In [0, 1): spreads retry delays (Math.random unless given). */
  random?: () => number;
  onRunStart?: (info: RunStart) => void;
  onRunEnd?: (info: RunEnd) => void;
}

export interface LoopSummary {
  runs: number;
  failures: number;
}

export interface RunningLoop {
  /** Resolves once the signal is aborted and the run in progress (if any) has ended. */
  readonly finished: Promise<LoopSummary>;
  /** Whether a run (or a backoff wait before a retry) is in progress. */
  readonly busy: boolean;
  readonly runs: number;
}

export function startLoop(opts: LoopOptions): RunningLoop {
  const random = opts.random ?? Math.random;
  const { signal } = opts;
  let pending: Trigger[] = [];
  let busy = false;
  let runs = 0;
  let totalFailures = 0;
  let failures = 0;

  /** One run, with its report; after a failure, waits out the backoff and asks for a retry. */
  const runOnce = async (why: Trigger[]): Promise<void> => {
    runs += 1;
    const run = runs;
    safely(() => opts.onRunStart?.({ run, why }));
    const started = performance.now();
    try {
      await opts.run(why, signal);
      failures = 0;
      safely(() => opts.onRunEnd?.({ run, why, ok: true, durationMs: performance.now() - started, failures }));
    } catch (error) {
      failures += 1;
      totalFailures += 1;
      const retryInMs = backoffDelay(failures, opts.backoff, random());
      safely(() => opts.onRunEnd?.({ run, why, ok: false, error, durationMs: performance.now() - started, failures, retryInMs }));
      // Triggers arriving during the wait join the retry rather than cutting the backoff short.
      await sleep(retryInMs, undefined, { signal }).then(
        () => pending.push({ kind: 'retry' }),
        () => undefined, // aborted: no retry
      );
    }
  };

  // Runs until nothing is pending. The last look at `pending` and the completion happen in one
  // synchronous step, so no trigger can slip in between and be dropped by exhaustMap.
  const drain = () =>
    new Observable<void>((subscriber) => {
      const next = (): void => {
        if (pending.length === 0 || signal.aborted) {
          busy = false;
          subscriber.complete();
          return;
        }
        busy = true;
        const why = pending;
        pending = [];
        runOnce(why).then(next, (e) => subscriber.error(e));
      };
      next();
    });

  let subscription: Subscription | undefined;
  const finished = new Promise<LoopSummary>((resolve, reject) => {
    subscription = opts.triggers
      .pipe(
        takeUntil(aborted$(signal)),
        tap((t) => pending.push(t)),
        exhaustMap(drain),
      )
      .subscribe({ complete: () => resolve({ runs, failures: totalFailures }), error: reject });
  });
  void finished.finally(() => subscription?.unsubscribe());

  return {
    finished,
    get busy() {
      return busy;
    },
    get runs() {
      return runs;
    },
  };
}

/** Reporting must never break the loop. */
function safely(report: () => void): void {
  try {
    report();
  } catch {
    // A broken reporter is not a reason to stop keeping the host converged.
  }
}
