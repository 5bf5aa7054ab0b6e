// `thinlayer doctor` and `thinlayer gc`: the CLI halves. doctor reads (no lock, no event); gc shows
// what it would delete, and with --yes takes the lock and deletes it through the log.
// Errors propagate to the entry point (src/cli/main.ts), which turns them into exit codes.

import type { KernelPort } from '../kernel/port.ts';
import type { BackendChoice } from '../kernel/select.ts';
import { Session } from '../reconcile/session.ts';
import { TerminalReporter } from './render.ts';
import { inspect } from '../doctor/inspect.ts';
import { diagnose } from '../doctor/diagnose.ts';
import { planGc } from '../doctor/gc-plan.ts';
import { runGc, type GcResult } from '../doctor/gc.ts';
import { renderDoctor, renderGcPlan, renderGcResult } from '../doctor/render.ts';

export interface DoctorCommandOptions {
  stateDir: string;
  backend: BackendChoice;
  json: boolean;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** Use this kernel instead of choosing one (tests). */
  kernel?: KernelPort;
}

export interface GcCommandOptions extends DoctorCommandOptions {
  /** Delete; without it gc only shows what it would delete. */
  yes: boolean;
}

function printer(out: NodeJS.WritableStream): (text: string) => void {
  return (text) => void out.write(text.endsWith('\n') ? text : text + '\n');
}

/** Exit code: 0 healthy (warnings allowed), 1 when any finding is an error. */
export async function doctorCommand(opts: DoctorCommandOptions): Promise<number> {
  const reporter = new TerminalReporter(opts.err, opts.json);
  const session = await Session.open({ stateDir: opts.stateDir, backend: opts.backend, reporter, mutate: false, command: 'doctor', kernel: opts.kernel });
  try {
    const report = diagnose(await inspect(session), session.stateDir.root);
    printer(opts.out)(opts.json ? JSON.stringify(report) : renderDoctor(report));
    return report.exitCode;
  } finally {
    await session.close();
  }
}

/** Exit code: 0 when gc did (or, without --yes, would do) its work, 1 when it cannot run. */
export async function gcCommand(opts: GcCommandOptions): Promise<number> {
  const reporter = new TerminalReporter(opts.err, opts.json);
  const print = printer(opts.out);
  const session = await Session.open({ stateDir: opts.stateDir, backend: opts.backend, reporter, mutate: opts.yes, command: 'gc', kernel: opts.kernel });
  try {
    const facts = await inspect(session);
    const plan = planGc(facts);
    const summary = {
      dryRun: !opts.yes,
      blockers: plan.blockers,
      steps: plan.steps.map(({ op, target, reason }) => ({ op, target, reason })),
      settle: plan.settle,
      skipped: plan.skipped,
    };
    if (plan.blockers.length > 0 || !opts.yes) {
      print(opts.json ? JSON.stringify(summary) : renderGcPlan(plan, false));
      return plan.blockers.length > 0 ? 1 : 0;
    }
    if (!opts.json) print(renderGcPlan(plan, true));
    const result: GcResult = await runGc(session, plan, facts.poolDmName!, reporter);
    if (opts.json) print(JSON.stringify({ ...summary, runId: result.runId, done: result.steps, settled: result.settled }));
    else if (result.steps > 0 || result.settled > 0) print(renderGcResult(result));
    return 0;
  } finally {
    await session.close();
  }
}
