// A run: the log's record that a command (apply, up, down, destroy, gc, pool grow, the snapshotter)
// set out to change things, and how it ended. `run.started` before its first step, `run.finished`
// with its outcome after its last one: converged (the work is done), interrupted (SIGINT or SIGTERM
// stopped it between steps: the same command again finishes it) or failed. A run started and never
// finished was killed; doctor says so (`run.interrupted`), and the next run of a command that
// converges closes it. Its steps are `${runId}:${index}`. Every step runs in a run: withRun is the
// one place this bookkeeping is written.

import type { Step } from '../model/step-contract.ts';
import type { RunFinishedEvent } from '../model/events.ts';
import type { EngineState } from '../model/engine-state.ts';
import type { DmInfo } from '../kernel/kernel-port.ts';
import type { Reporter } from '../messages/message-port.ts';
import { executePlan } from './execute-plan.ts';
import { newRunId } from './step-runner.ts';
import type { Session } from './session.ts';

export type RunOutcome = RunFinishedEvent['outcome'];

/** One run of one command: its id, and the steps it took. */
export class Run {
  #started = false;
  /** Step indexes given out (to steps under way too: the snapshotter runs several at once). */
  #indexes = 0;
  /** Steps done. */
  steps = 0;

  constructor(
    readonly command: string,
    readonly runId: string = newRunId(),
  ) {}

  get started(): boolean {
    return this.#started;
  }

  /** Appends run.started, once. Not made durable here: the first step's intent is, before the kernel is touched. */
  async start(session: Session): Promise<void> {
    if (this.#started) return;
    await session.append([{ type: 'run.started', runId: this.runId, command: this.command, pid: process.pid }], { durable: false });
    this.#started = true;
  }

  async finish(session: Session, outcome: RunOutcome): Promise<void> {
    await session.append([{ type: 'run.finished', runId: this.runId, outcome, steps: this.steps }]);
  }

  /** Runs steps in this run (execute-plan.ts), numbered after every step it gave out; answers how many were done. */
  async execute(
    session: Session,
    steps: Step[],
    poolDmName: string,
    opts: { reporter: Reporter; signal?: AbortSignal; observed?: Record<string, DmInfo> },
  ): Promise<number> {
    const firstIndex = this.#indexes;
    this.#indexes += steps.length;
    const done = await executePlan(session, steps, poolDmName, { runId: this.runId, firstIndex, ...opts });
    this.steps += done;
    return done;
  }

  /** The id of a step that is the run's one step of its kind (a pool grow: `${runId}:pool.grow`). */
  stepId(name: string): string {
    return `${this.runId}:${name}`;
  }
}

/** Where a run's events are written: the command's session, or (a long-lived process) a session opened for each write. */
export type RunSessions = Session | ((work: (s: Session) => Promise<void>) => Promise<void>);

export interface RunOptions<T> {
  runId?: string;
  /**
   * The body starts the run itself (`run.start`), when it knows it has something to do: a command
   * that finds nothing to change leaves no run in the log. Otherwise it is started before the body.
   */
  lazy?: boolean;
  /** How the body's answer ended the run (default: converged). */
  outcome?: (value: T) => Exclude<RunOutcome, 'failed'>;
  /** After a failure, before run.finished: the run's last steps (the reconciler deletes a layer whose content failed). Its own failure is ignored. */
  onFailure?: (run: Run) => Promise<void>;
  /**
   * Which run an earlier command left unfinished (killed, or interrupted) this one closes when it
   * converges, even with nothing to do, so that the log says the work is done (the reconciler: its
   * convergence is the desired state reached, whoever began the work).
   */
  closeUnfinished?: (last: NonNullable<EngineState['lastRun']>) => boolean;
}

function unfinished(state: EngineState, closes: (last: NonNullable<EngineState['lastRun']>) => boolean): boolean {
  return state.lastRun !== null && (state.lastRun.outcome === 'running' || state.lastRun.outcome === 'interrupted') && closes(state.lastRun);
}

/** Runs `body` as one run of `command`: run.started, the body, run.finished with its outcome (failed when it throws). */
export async function withRun<T>(where: RunSessions, command: string, body: (run: Run) => Promise<T>, opts: RunOptions<T> = {}): Promise<T> {
  const inSession = typeof where === 'function' ? where : (work: (s: Session) => Promise<void>) => work(where);
  const run = new Run(command, opts.runId);
  if (!opts.lazy) await inSession((s) => run.start(s));
  let value: T;
  try {
    value = await body(run);
  } catch (e) {
    if (run.started) {
      await opts.onFailure?.(run).catch(() => undefined);
      await inSession((s) => run.finish(s, 'failed')).catch(() => undefined);
    }
    throw e;
  }
  const outcome = opts.outcome?.(value) ?? 'converged';
  await inSession(async (s) => {
    if (!run.started && opts.closeUnfinished && outcome === 'converged' && unfinished(s.state, opts.closeUnfinished)) await run.start(s);
    if (run.started) await run.finish(s, outcome);
  });
  return value;
}
