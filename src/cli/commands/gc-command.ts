// `thinlayer gc [--yes] [--thin-id N] [--keep-foreign]`: shows what it would delete, and with --yes
// deletes it through the log. Exit code: 0 when gc did (or, without --yes, would do) its work, 1 when
// it cannot run, 130 or 143 when SIGINT or SIGTERM stopped it between steps.

import type { CommandContext } from '../command-context.ts';
import { gc, type GcOutcome } from '../../app/gc.ts';
import { renderGcPlan, renderGcResult } from '../../doctor/report-text.ts';
import { UserError } from '../../errors/index.ts';
import { TerminalReporter, renderInterrupted } from '../render.ts';
import { interruptedExitCode } from '../exit-codes.ts';
import { summaryLine } from '../output.ts';
import { askYesNo, canAsk } from '../prompt.ts';
import { CancelledError } from '../cancelled.ts';
import { withSignals } from '../signals.ts';
import { printer, type DoctorCommandOptions } from './doctor-command.ts';

export interface GcCommandOptions extends DoctorCommandOptions {
  /** Delete; without it gc only shows what it would delete. */
  yes: boolean;
  /** Aborted by SIGINT or SIGTERM: gc stops between steps. */
  signal?: AbortSignal;
  /** `--thin-id N`: delete that one thin id, which this log did not create, after a confirmation saying its mapped size. */
  thinId?: number;
  /** `--keep-foreign`: record what the pool holds beyond this log as foreign, so the log is no longer behind it. */
  keepForeign?: boolean;
  /** Asks the user; answers true to go ahead (the CLI asks on a terminal). Without it, only --yes confirms. */
  confirm?: (question: string) => Promise<boolean>;
  /** Whether `confirm` asked someone (a terminal): a no is then a cancellation, not a missing --yes. */
  asked?: () => boolean;
}

export async function gcCommand(opts: GcCommandOptions): Promise<number> {
  const reporter = new TerminalReporter(opts.err, opts.json);
  const print = printer(opts.out);
  const { json } = opts;
  const outcome = await gc({
    stateDir: opts.stateDir,
    backend: opts.backend,
    kernel: opts.kernel,
    reporter,
    signal: opts.signal,
    yes: opts.yes,
    thinId: opts.thinId,
    keepForeign: opts.keepForeign,
    confirm: opts.confirm,
    onRun: (plan) => (json ? undefined : print(renderGcPlan(plan, true))),
  });
  return renderGc(outcome, print, opts);
}

function renderGc(outcome: GcOutcome, print: (text: string) => void, opts: GcCommandOptions): number {
  const { json } = opts;
  switch (outcome.kind) {
    case 'nothing-recorded':
      // The same answer and exit code as up and pool grow.
      print(json ? JSON.stringify({ outcome: 'nothing-recorded', steps: 0 }) : summaryLine({ command: 'gc', outcome: 'nothing-recorded', steps: 0 }));
      return 0;
    case 'keep-foreign-refused':
      print(json ? JSON.stringify({ blockers: [outcome.reason] }) : `gc --keep-foreign: ${outcome.reason}`);
      return 1;
    case 'kept-foreign':
      print(
        json
          ? JSON.stringify({ keptForeign: outcome.thinIds, txid: outcome.txid })
          : `Kept as foreign: ${outcome.thinIds.length === 0 ? 'no thin id' : `${outcome.thinIds.length === 1 ? 'thin id' : 'thin ids'} ${outcome.thinIds.join(', ')}`}; the log now accepts the pool's transaction id ${outcome.txid}.`,
      );
      return 0;
    case 'shown':
      print(json ? JSON.stringify(outcome.summary) : renderGcPlan(outcome.plan, false));
      return outcome.plan.blockers.length > 0 ? 1 : 0;
    case 'declined':
      print(json ? JSON.stringify(outcome.summary) : outcome.question);
      if (opts.asked?.()) throw new CancelledError(`deleting thin id ${opts.thinId}`);
      throw new UserError(`thin id ${opts.thinId} was not deleted: it was not confirmed (re-run with --yes to confirm)`, { path: '--yes' }, 'E_NOT_CONFIRMED');
    case 'ran': {
      const { result, plan, summary } = outcome;
      if (json)
        print(
          JSON.stringify({
            ...summary,
            runId: result.runId,
            done: result.steps,
            settled: result.settled,
            outcome: result.interrupted ? 'interrupted' : 'converged',
          }),
        );
      else if (result.interrupted) print(renderInterrupted(result.steps, plan.steps.length));
      else if (result.steps > 0 || result.settled > 0) print(renderGcResult(result, plan));
      return result.interrupted ? interruptedExitCode(opts.signal) : 0;
    }
  }
}

export async function run({ io, json, o, stateDir, backend }: CommandContext): Promise<number> {
  const thinId = o.thinId as string | undefined;
  if (thinId !== undefined && !/^\d+$/.test(thinId))
    throw new UserError(
      `--thin-id takes a thin id (a whole number), not ${JSON.stringify(thinId)}`,
      { path: '--thin-id', expected: 'a whole number' },
      'E_USAGE',
    );
  let asked = false;
  const confirm = (question: string) => {
    asked = canAsk(json);
    return askYesNo(question, json);
  };
  const run = (signal: AbortSignal) =>
    gcCommand({
      stateDir,
      backend,
      json,
      yes: o.yes === true,
      thinId: thinId !== undefined ? Number(thinId) : undefined,
      keepForeign: o.keepForeign === true,
      confirm,
      asked: () => asked,
      out: io.out,
      err: io.err,
      signal,
    });
  return (await withSignals(run)).result;
}
