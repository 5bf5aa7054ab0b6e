// `thinlayer destroy [--yes] [--force]`: delete every device, the pool and its backing files.

import type { CommandContext } from '../command-context.ts';
import { printNothingRecorded, printRunResult } from '../run-summary.ts';
import { planConfirmer } from '../plan-confirm.ts';
import { exitCodeOf, withSignals } from '../signals.ts';

export async function run({ io, json, o, common }: CommandContext): Promise<number> {
  const { destroy } = await import('../../app/destroy.ts');
  const confirm = planConfirmer(io, json);
  const { result, signal } = await withSignals((signal) => destroy({ ...common, yes: o.yes === true, force: o.force === true, confirm, signal }));
  if (!result) {
    printNothingRecorded(io, json, 'destroy');
    return 0;
  }
  printRunResult(io, json, 'destroy', result);
  return exitCodeOf(result.outcome, signal);
}
