// `thinlayer doctor` and `thinlayer gc`: the CLI halves. doctor reads (no lock, no event); gc shows
// what it would delete, and with --yes takes the lock and deletes it through the log.
// Errors propagate to the entry point (src/cli/main.ts), which turns them into exit codes.

import { stateDirExists } from '../app/checked-session.ts';
import type { KernelPort } from '../kernel/kernel-port.ts';
import type { BackendChoice } from '../kernel/select.ts';
import { Session } from '../engine/session.ts';
import { TerminalReporter, renderInterrupted } from './render.ts';
import { interruptedExitCode } from './exit-codes.ts';
import { summaryLine } from './output.ts';
import { inspect } from '../doctor/inspect.ts';
import { diagnose } from '../doctor/diagnose.ts';
import { settleInFlight } from '../doctor/in-flight.ts';
import { readLogAgain } from '../doctor/second-look.ts';
import { planGc } from '../doctor/gc-plan.ts';
import { runGc, type GcResult } from '../doctor/gc.ts';
import { renderDoctor, renderGcPlan, renderGcResult } from '../doctor/report-text.ts';
import { orphansOf, type DoctorFacts } from '../doctor/findings.ts';
import { UserError } from '../errors/index.ts';

/** `gc --keep-foreign`: the pool's transaction id and the thin ids beyond the log, recorded as foreign. */
async function keepForeign(session: Session, facts: DoctorFacts, print: (text: string) => void, json: boolean): Promise<number> {
  const pool = facts.observed.pool;
  if (!session.state.pool || !pool) {
    print(json ? JSON.stringify({ blockers: ['the pool is not active, or not this state directory\'s: run `thinlayer up` first'] }) : 'gc --keep-foreign: the pool is not active, or not this state directory\'s: run `thinlayer up` first');
    return 1;
  }
  if (!facts.thinIds) {
    print(json ? JSON.stringify({ blockers: [`the pool's thin ids could not be read: ${facts.thinIdsError}`] }) : `gc --keep-foreign: the pool's thin ids could not be read: ${facts.thinIdsError}`);
    return 1;
  }
  const thinIds = orphansOf(facts).map((o) => o.thinId);
  await session.append([{ type: 'pool.foreign-kept', txid: pool.status.transactionId, thinIds }]);
  print(json ? JSON.stringify({ keptForeign: thinIds, txid: pool.status.transactionId }) : `Kept as foreign: thin id(s) ${thinIds.join(', ') || 'none'}; the log now accepts the pool's transaction id ${pool.status.transactionId}.`);
  return 0;
}

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
  /** Aborted by SIGINT or SIGTERM: gc stops between steps. */
  signal?: AbortSignal;
  /** `--thin-id N`: delete that one thin id, which this log did not create, after a confirmation saying its mapped size. */
  thinId?: number;
  /** `--keep-foreign`: record what the pool holds beyond this log as foreign, so the log is no longer behind it. */
  keepForeign?: boolean;
  /** Asks the user; answers true to go ahead (the CLI asks on a terminal). Without it, only --yes confirms. */
  confirm?: (question: string) => Promise<boolean>;
}

function printer(out: NodeJS.WritableStream): (text: string) => void {
  return (text) => void out.write(text.endsWith('\n') ? text : text + '\n');
}

/** Exit code: 0 healthy (warnings allowed), 1 when any finding is an error. */
export async function doctorCommand(opts: DoctorCommandOptions): Promise<number> {
  const reporter = new TerminalReporter(opts.err, opts.json);
  const session = await Session.open({ stateDir: opts.stateDir, backend: opts.backend, reporter, mutate: false, command: 'doctor', kernel: opts.kernel });
  try {
    const facts = await inspect(session);
    // Read the log again after the kernel: what changed in between is work under way, not a fault.
    const second = await readLogAgain(session.stateDir, facts.state.lastSeq);
    const report = second ? settleInFlight(diagnose(facts, session.stateDir.root), facts, second) : diagnose(facts, session.stateDir.root);
    printer(opts.out)(opts.json ? JSON.stringify(report) : renderDoctor(report));
    return report.exitCode;
  } finally {
    await session.close();
  }
}

/** Exit code: 0 when gc did (or, without --yes, would do) its work, 1 when it cannot run, 130 or 143 when SIGINT or SIGTERM stopped it between steps. */
export async function gcCommand(opts: GcCommandOptions): Promise<number> {
  const reporter = new TerminalReporter(opts.err, opts.json);
  const print = printer(opts.out);
  const named = opts.thinId !== undefined;
  const mutate = opts.yes || named || opts.keepForeign === true;
  if (!(await stateDirExists(opts.stateDir))) {
    // Nothing recorded, and nothing made to say so: the same answer and exit code as up and pool grow.
    print(opts.json ? JSON.stringify({ outcome: 'nothing-recorded', steps: 0 }) : summaryLine({ command: 'gc', outcome: 'nothing-recorded', steps: 0 }));
    return 0;
  }
  const session = await Session.open({ stateDir: opts.stateDir, backend: opts.backend, reporter, mutate, command: 'gc', kernel: opts.kernel });
  try {
    if (!session.state.desired && !session.state.poolSpec && !session.state.pool) {
      // Nothing recorded: the same answer and exit code as up and pool grow.
      print(opts.json ? JSON.stringify({ outcome: 'nothing-recorded', steps: 0 }) : summaryLine({ command: 'gc', outcome: 'nothing-recorded', steps: 0 }));
      return 0;
    }
    const facts = await inspect(session);
    if (opts.keepForeign) return await keepForeign(session, facts, print, opts.json);
    const plan = planGc(facts, { thinId: opts.thinId });
    const summary = {
      dryRun: !opts.yes,
      blockers: plan.blockers,
      steps: plan.steps.map(({ op, target, reason }) => ({ op, target, reason })),
      settle: plan.settle,
      skipped: plan.skipped,
    };
    if (named && plan.blockers.length === 0) {
      // Named: say what it holds, and ask (or take --yes).
      const metadataDev = facts.observed.metadata!.loop?.path ?? facts.observed.metadata!.path;
      const bytes = await session.kernel.thinMappedBytes(facts.poolDmName!, metadataDev, opts.thinId!);
      const question = `thin id ${opts.thinId} maps ${bytes} bytes (${(bytes / 2 ** 20).toFixed(1)} MiB) of data that this log did not create; deleting it loses that data. Delete it?`;
      const confirmed = opts.yes || (opts.confirm ? await opts.confirm(question) : false);
      if (!confirmed) {
        print(opts.json ? JSON.stringify({ ...summary, dryRun: true, mappedBytes: bytes }) : question);
        throw new UserError(`thin id ${opts.thinId} was not deleted: it was not confirmed (re-run with --yes to confirm)`, { path: '--yes' }, 'E_NOT_CONFIRMED');
      }
      (summary as Record<string, unknown>).mappedBytes = bytes;
    } else if (plan.blockers.length > 0 || !opts.yes) {
      print(opts.json ? JSON.stringify(summary) : renderGcPlan(plan, false));
      return plan.blockers.length > 0 ? 1 : 0;
    }
    if (plan.blockers.length > 0) {
      print(opts.json ? JSON.stringify(summary) : renderGcPlan(plan, false));
      return 1;
    }
    if (!opts.json) print(renderGcPlan(plan, true));
    const result: GcResult = await runGc(session, plan, facts.poolDmName!, reporter, opts.signal);
    if (opts.json) print(JSON.stringify({ ...summary, runId: result.runId, done: result.steps, settled: result.settled, outcome: result.interrupted ? 'interrupted' : 'converged' }));
    else if (result.interrupted) print(renderInterrupted(result.steps, plan.steps.length));
    else if (result.steps > 0 || result.settled > 0) print(renderGcResult(result));
    return result.interrupted ? interruptedExitCode(opts.signal) : 0;
  } finally {
    await session.close();
  }
}
