// `thinlayer down [--force]`: unmount and deactivate everything, keep all data.

import type { CommandContext } from '../command-context.ts';
import { printNothingRecorded, printRunResult } from '../run-summary.ts';
import { exitCodeOf, withSignals } from '../signals.ts';

export async function run({ io, json, o, common }: CommandContext): Promise<number> {
  const { down } = await import('../../app/down.ts');
  const { result, signal } = await withSignals((signal) => down({ ...common, yes: true, force: o.force === true, signal }));
  if (!result) {
    printNothingRecorded(io, json, 'down');
    return 0;
  }
  printRunResult(io, json, 'down', result);
  return exitCodeOf(result.outcome, signal);
}
