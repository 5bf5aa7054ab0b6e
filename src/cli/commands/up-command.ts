// `thinlayer up`: converge to the desired state already recorded.

import type { CommandContext } from '../command-context.ts';
import { printNothingRecorded, printRunResult } from '../run-summary.ts';
import { exitCodeOf, withSignals } from '../signals.ts';

export async function run({ io, json, common }: CommandContext): Promise<number> {
  const { up } = await import('../../app/up.ts');
  const { result, signal } = await withSignals((signal) => up({ ...common, yes: true, signal }));
  if (!result) {
    printNothingRecorded(io, json, 'up');
    return 0;
  }
  printRunResult(io, json, 'up', result);
  return exitCodeOf(result.outcome, signal);
}
