// `thinlayer status [--detailed-exitcode]`: devices, layers and the pool as the log and the kernel show them.

import type { CommandContext } from '../command-context.ts';
import { renderStatus } from '../render.ts';
import { DETAILED } from '../detailed-exit.ts';

export async function run({ io, json, o, common }: CommandContext): Promise<number> {
  const { status, statusWithPlan } = await import('../../app/status.ts');
  if (o.detailedExitcode !== true) {
    const view = await status(common);
    io.print(json ? JSON.stringify(view) : renderStatus(view));
    return 0;
  }
  // Drift is whatever `up` would change: the planner's answer, read with the status in one look.
  const { view, plan } = await statusWithPlan(common);
  io.print(json ? JSON.stringify(view) : renderStatus(view));
  if (plan.blockers.length > 0) return DETAILED.failed;
  return plan.steps.length > 0 || view.pendingSteps > 0 ? DETAILED.changes : DETAILED.converged;
}
