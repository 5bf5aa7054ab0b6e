// What the CLI writes: results on stdout, everything else on stderr, one summary form for every
// command that runs steps, and one way a failure is shown. A reader that goes away (`thinlayer
// events | head -1`) ends the command quietly instead of with an EPIPE stack trace.

import { systemCallError, ThinlayerError, UserError } from '../errors/index.ts';
import type { Plan } from '../model/step-contract.ts';
import { plural as count } from '../messages/format.ts';
import { describePlanThings } from '../messages/plan-things.ts';

export interface RunSummary {
  /** The command as typed: apply, up, down, destroy, gc, pool grow. */
  command: string;
  outcome: string;
  steps: number;
  /** The steps taken plus those of the current plan not reached (an interrupted run). */
  planned?: number;
  passes?: number;
  runId?: string | null;
  /** The run's first plan: the summary says what it did to which things. */
  plan?: Plan;
}

const plural = (n: number, word: string) => count(n, word, word.endsWith('s') ? `${word}es` : `${word}s`);

/**
 * The one form of a command's last line, counting the things changed:
 * `apply: converged after 17 steps in 2 passes (run …): created 3 devices, 2 layers, the base and the pool.`
 */
export function summaryLine(s: RunSummary): string {
  if (s.outcome === 'interrupted') return `Interrupted after ${s.steps} of ${plural(s.planned ?? s.steps, 'step')}; run the same command again to finish`;
  if (s.outcome === 'nothing-recorded') return `${s.command}: nothing recorded yet: run \`thinlayer apply -f MANIFEST\` first.`;
  if (s.steps === 0 && (s.outcome === 'converged' || s.outcome === 'done')) return `${s.command}: nothing to do; everything is in its desired state.`;
  const passes = s.passes && s.passes > 1 ? ` in ${plural(s.passes, 'pass')}` : '';
  const run = s.runId ? ` (run ${s.runId})` : '';
  const things = s.plan ? describePlanThings(s.plan, 'past') : '';
  return `${s.command}: ${s.outcome} after ${plural(s.steps, 'step')}${passes}${run}${things ? `: ${things}` : ''}.`;
}

function isBrokenPipe(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === 'EPIPE';
}

export class CliOutput {
  /** The run id of the run under way, once the engine has said it (a failure's JSON names it). */
  runId: string | null = null;
  private closed = false;
  /** Aborted when a reader goes away: a command that would go on printing (events --follow) stops. */
  readonly readerGone = new AbortController();

  constructor(
    readonly out: NodeJS.WritableStream,
    readonly err: NodeJS.WritableStream,
  ) {
    for (const stream of [out, err]) {
      // A reader that closed its end: stop writing, quietly, and let the command end as it would.
      // A run under way is not cut short: it finishes its steps and records them.
      stream.on?.('error', (e: unknown) => {
        if (!isBrokenPipe(e) && (e as NodeJS.ErrnoException)?.code !== 'ERR_STREAM_DESTROYED') throw e;
        this.closed = true;
        this.readerGone.abort();
      });
    }
  }

  /** A result line on stdout. */
  print(text: string): void {
    this.raw(text.endsWith('\n') ? text : `${text}\n`);
  }

  raw(text: string): void {
    if (!this.closed) this.out.write(text);
  }

  rawErr(text: string): void {
    if (!this.closed) this.err.write(text);
  }

  /** A line for people on stderr (prompts, plans shown before a confirmation, notes). */
  note(text: string): void {
    this.rawErr(text.endsWith('\n') ? text : `${text}\n`);
  }

  /**
   * The one place a failure is shown: its message on stderr, and with --json one object on stdout
   * a script can read. Returns the exit code.
   */
  failure(e: unknown, json: boolean): number {
    // A failed system call (a read-only or full state dir) is said in a sentence, not as a bug.
    const known = e instanceof ThinlayerError ? e : systemCallError(e);
    const message = known ? known.message : `internal error (a bug in thinlayer, please report it): ${(e as Error)?.stack ?? e}`;
    this.note(`thinlayer: ${message}`);
    if (json) {
      const detail = known ? (known.toJSON() as Record<string, unknown>) : { code: 'E_INTERNAL', message };
      const path = known instanceof UserError ? (known.detail.path ?? null) : null;
      this.print(JSON.stringify({ error: { ...detail, code: detail.code, message, path }, outcome: 'failed', runId: this.runId }));
    }
    return known ? known.exitCode : 1;
  }
}
