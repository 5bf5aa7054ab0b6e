// `plan`: what apply (given a manifest) or up (given none) would do, without doing it (no lock, no event).

import type { Plan } from '../model/step-contract.ts';
import { ArchiveDigestFile } from '../layers/archive-digests.ts';
import { inputOf, readDesired, type ManifestArg } from './desired.ts';
import { convergencePlan } from './converge.ts';
import { withSession, type CommonOptions } from './options.ts';

export interface PlanOptions extends CommonOptions {
  mode?: 'converge' | 'down';
}

/** What apply would do, without doing it (no lock, no event). */
export async function planFor(manifest: ManifestArg | null, opts: PlanOptions): Promise<Plan> {
  const input = manifest === null ? null : await inputOf(manifest);
  return withSession(opts, false, 'plan', async (s) => {
    // The same checks as apply's (desired.ts). Archives hashed by an earlier apply are looked
    // up, not hashed again; plan writes nothing.
    const ready = input === null ? null : await readDesired(input, s.state, { digests: await ArchiveDigestFile.open(s.stateDir) });
    const read = ready?.desired ?? null;
    const target = input === null ? s.state.desired : read;
    return convergencePlan(s, { target, mode: opts.mode ?? 'converge', content: ready?.content ?? s.state.content ?? undefined, read });
  });
}
