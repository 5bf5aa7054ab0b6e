// The question a plan that deletes devices asks before it runs (apply, destroy): the plan shown,
// then what it deletes, and y/N on a terminal; no without one. An answer of no cancels (exit 1).

import type { Plan } from '../model/step-contract.ts';
import type { CliOutput } from './output.ts';
import { renderPlan, renderDeletes } from './render.ts';
import { askYesNo, canAsk } from './prompt.ts';
import { CancelledError } from './cancelled.ts';

export function planConfirmer(io: CliOutput, json: boolean): (plan: Plan) => Promise<boolean> {
  return async (plan) => {
    io.note(renderPlan(plan));
    if (!canAsk(json)) {
      io.note(renderDeletes(plan));
      return false;
    }
    if (!(await askYesNo(`${renderDeletes(plan)} Go ahead?`, json))) throw new CancelledError('the plan');
    return true;
  };
}
