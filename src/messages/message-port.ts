// The one message port: everything the engine tells a user goes through Reporter.notify as a message
// with a stable code and a typed payload. The terminal renderer, --json output and watch mode are
// renderings of the same messages, and tests assert on codes, not wording.

import type { Step, Plan } from '../model/step-contract.ts';

export type Message =
  | { code: 'backend.notice'; backend: 'sim' | 'kernel'; text: string }
  | { code: 'recovery.torn-tail'; bytes: number; keptAs: string }
  | { code: 'recovery.pending'; steps: number }
  /** snapshot.json could not be written: the next session replays more of the log, and saves again. */
  | { code: 'state.snapshot-save-failed'; file: string; error: string }
  | { code: 'lock.took-over'; pid: number; command: string }
  | { code: 'lock.waiting'; pid: number; command: string; since: string }
  | { code: 'run.started'; runId: string; command: string }
  | { code: 'plan.ready'; plan: Plan; pass: number }
  | { code: 'step.start'; step: Step; index: number; total: number }
  | { code: 'step.done'; step: Step; index: number; total: number }
  | { code: 'step.failed'; step: Step; error: string }
  | { code: 'progress'; task: string; done: number; total: number; unit: string }
  | { code: 'run.converged'; steps: number; passes: number }
  | { code: 'run.failed'; error: string }
  /** SIGINT or SIGTERM stopped the run between steps: `steps` of `planned` were taken. */
  | { code: 'run.interrupted'; steps: number; planned: number }
  | { code: 'warning'; text: string }
  // watch mode (src/watch)
  | { code: 'watch.started'; file: string; intervalMs: number; metricsUrl: string | null }
  | { code: 'watch.run'; run: number; reasons: string[] }
  | { code: 'watch.run-done'; run: number; durationMs: number; steps: number }
  | { code: 'watch.run-failed'; run: number; error: string; failures: number; retryInMs: number }
  | { code: 'watch.manifest-invalid'; file: string; error: string; keeping: 'last-valid' | 'recorded' | 'nothing' }
  | { code: 'watch.needs-confirmation'; file: string; deletes: string[] }
  | { code: 'watch.untrusted-source'; file: string; layer: string; source: string; why: string }
  | { code: 'watch.stopped'; runs: number; failures: number }
  | { code: 'pool.use-warning'; role: 'data' | 'metadata'; percent: number; level: number }
  | { code: 'pool.grown'; role: 'data' | 'metadata'; fromBytes: number; toBytes: number }
  | { code: 'pool.autoextend-blocked'; role: 'data' | 'metadata'; percent: number; reason: string }
  // the containerd snapshotter (src/snapshotter)
  | { code: 'snapshotter.ready'; socket: string; pool: string; snapshots: number }
  | { code: 'snapshotter.recovered'; deleted: number; reactivated: number; deactivated: number; settled: number }
  | { code: 'snapshotter.request-failed'; method: string; key: string; error: string }
  | { code: 'snapshotter.stopped' }
  /** destroy or down --force asked this holder (watch, snapshotter) to stop: it stops as after SIGTERM. */
  | { code: 'holder.stop-requested'; kind: 'watch' | 'snapshotter'; by: string; pid: number }
  /** destroy or down --force asked a holder to stop and waits for it. */
  | { code: 'holder.stopping'; kind: 'watch' | 'snapshotter'; pid: number }
  | { code: 'holder.stopped'; kind: 'watch' | 'snapshotter'; pid: number };

export interface Reporter {
  notify(message: Message): void;
}

export const silentReporter: Reporter = { notify() {} };

/** Collects messages in memory (tests, --json summaries). */
export class CollectingReporter implements Reporter {
  readonly messages: Message[] = [];
  constructor(private readonly next?: Reporter) {}
  notify(message: Message): void {
    this.messages.push(message);
    this.next?.notify(message);
  }
}
