// `thinlayer status [NAME...] [-o wide|json|custom-columns=…] [--columns …] [--detailed-exitcode]`:
// devices, layers and the pool as the log and the kernel show them.

import type { CommandContext } from '../command-context.ts';
import { renderStatus, selectThings, statusLayout } from '../status-table.ts';
import { DETAILED } from '../detailed-exit.ts';
import type { StatusView } from '../../app/status-view.ts';

export async function run({ io, json, o, inv, common }: CommandContext): Promise<number> {
  const layout = statusLayout({ output: o.output as string | undefined, columns: o.columns as string | undefined }, json);
  const names = inv.args;
  const print = (view: StatusView) => {
    const shown = selectThings(view, names);
    io.print(layout.json ? JSON.stringify(shown) : renderStatus(shown, layout, names.length > 0));
  };
  const { status, statusWithPlan } = await import('../../app/status.ts');
  if (o.detailedExitcode !== true) {
    print(await status(common));
    return 0;
  }
  // Drift is whatever `up` would change: the planner's answer, read with the status in one look.
  const { view, plan } = await statusWithPlan(common);
  print(view);
  if (plan.blockers.length > 0) return DETAILED.failed;
  return plan.steps.length > 0 || view.pendingSteps > 0 ? DETAILED.changes : DETAILED.converged;
}
