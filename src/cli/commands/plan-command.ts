// `thinlayer plan [-f FILE] [--detailed-exitcode]`: what apply (or up) would do, without doing it.

import type { CommandContext } from '../command-context.ts';
import { renderPlan } from '../render.ts';
import { manifestArg } from '../manifest-option.ts';
import { DETAILED } from '../detailed-exit.ts';

export async function run(ctx: CommandContext): Promise<number> {
  const { io, json, o, common } = ctx;
  const { planFor } = await import('../../app/plan.ts');
  const plan = await planFor(o.file === undefined ? null : await manifestArg(ctx), common);
  io.print(json ? JSON.stringify(plan) : renderPlan(plan));
  if (plan.blockers.length > 0) return DETAILED.failed;
  return o.detailedExitcode === true && plan.steps.length > 0 ? DETAILED.changes : DETAILED.converged;
}
