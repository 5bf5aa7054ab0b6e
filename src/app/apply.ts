// `apply`: record a manifest as the desired state and converge to it.

import type { RunResult } from '../reconcile/reconcile.ts';
import { inputOf, type ManifestArg } from './desired.ts';
import { withCheckedSession } from './checked-session.ts';
import { convergeTo } from './converge.ts';
import { confirmer, reporterOf, sessionOptions, type MutateOptions } from './options.ts';

/** Record the manifest as the desired state and converge to it. */
export async function apply(manifest: ManifestArg, opts: MutateOptions): Promise<RunResult> {
  const input = await inputOf(manifest);
  // Checked (manifest, refusals, every layer source) before anything is created or recorded.
  return withCheckedSession(sessionOptions(opts, true, 'apply'), input, (s, ready) =>
    convergeTo(s, ready, { command: 'apply', reporter: reporterOf(opts), confirm: confirmer(opts), signal: opts.signal }),
  );
}
