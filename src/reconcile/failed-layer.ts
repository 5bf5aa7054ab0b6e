// A layer whose content failed to apply (content the checks at hashing could not judge, such as a
// symlink a lower layer left; a source changed since it was hashed; a full pool) is deleted by the
// same run that made it, so that no half-made layer stays in the pool looking like a layer. Its
// deletion is logged and reported like any step; if it cannot be deleted now, status and doctor
// show the layer as failed, and the next plan deletes it before building it again.

import type { Session } from '../engine/session.ts';
import type { Step } from '../model/step-contract.ts';
import { StepWriter } from '../plan/step-writer.ts';
import { describeThing } from '../lifecycle/projection.ts';

/** The steps that delete every layer whose content failed and was never committed (the run that made it runs them). */
export async function failedLayerSteps(session: Session): Promise<Step[]> {
  const failed = Object.values(session.state.things).filter((t) => t.kind === 'layer' && !t.ready && t.failed !== undefined && t.lifecycle.state === 'created');
  if (failed.length === 0) return [];
  const w = new StepWriter(session.state.poolSpec?.filesystem ?? 'ext4', new Map());
  for (const t of failed) {
    // layer.commit removes its device as it fails; one left active is deactivated first.
    const live = (await session.kernel.info(t.dmName))?.liveTable === true;
    w.lifecycle(t, live ? 'activated' : 'created', 'absent', null, null);
  }
  return w.steps.map((s) => {
    const t = session.state.things[s.target];
    return s.op === 'thin.delete' && t
      ? { ...s, reason: `delete ${describeThing(t)}, whose content failed to apply (${t.failed}): nothing half-made is kept` }
      : s;
  });
}
