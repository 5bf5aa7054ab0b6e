// `thinlayer apply -f FILE [--yes]`: record the manifest as the desired state and converge to it.

import type { CommandContext } from '../command-context.ts';
import { summaryLine } from '../output.ts';
import { manifestArg } from '../manifest-option.ts';
import { planConfirmer } from '../plan-confirm.ts';
import { exitCodeOf, withSignals } from '../signals.ts';

export async function run(ctx: CommandContext): Promise<number> {
  const { io, json, o, common } = ctx;
  const { apply } = await import('../../app/apply.ts');
  const confirm = planConfirmer(io, json);
  const { result, signal } = await withSignals((signal) => manifestArg(ctx).then((m) => apply(m, { ...common, yes: o.yes === true, confirm, signal })));
  if (json)
    io.print(
      JSON.stringify({ outcome: result.outcome, runId: result.runId, steps: result.steps, planned: result.planned, passes: result.passes, plan: result.plan }),
    );
  else io.print(summaryLine({ command: 'apply', ...result }));
  return exitCodeOf(result.outcome, signal);
}
