// The last line of a command that runs steps (apply, up, down, destroy, pool grow), as text or --json.

import type { RunResult } from '../reconcile/reconcile.ts';
import { summaryLine, type CliOutput } from './output.ts';

/** Nothing recorded in the state dir: said, not an error. */
export function printNothingRecorded(io: CliOutput, json: boolean, command: string): void {
  io.print(json ? JSON.stringify({ outcome: 'nothing-recorded', steps: 0 }) : summaryLine({ command, outcome: 'nothing-recorded', steps: 0 }));
}

/** up, down and destroy: the outcome, the run and its steps. */
export function printRunResult(io: CliOutput, json: boolean, command: string, result: RunResult): void {
  io.print(
    json ? JSON.stringify({ outcome: result.outcome, runId: result.runId, steps: result.steps, planned: result.planned }) : summaryLine({ command, ...result }),
  );
}
