// doctor's findings about the desired state: whether it is reached (`drift`, an error: a device that
// is not what the manifest says is not healthy, whatever the log and the kernel agree on) and whether
// the last run ended (`run.interrupted`, a warning: its command, run again, finishes the work).
// Pure: the differences themselves are src/plan/drift.ts.

import type { EngineState } from '../model/engine-state.ts';
import { chainLayers } from '../plan/layer-chain.ts';
import { driftOf } from '../plan/drift.ts';
import type { Finding } from './finding.ts';
import type { DoctorFacts } from './findings.ts';

/** The command that converges to the recorded manifest. */
function applyCommand(state: EngineState): string {
  return `thinlayer apply -f ${state.desired?.file || 'MANIFEST'}`;
}

/** Each difference between what exists and the recorded desired state, as a `drift` error. */
export function driftFindings(facts: DoctorFacts): Finding[] {
  const { state, observed } = facts;
  // A run under way changes things as doctor looks; a foreign pool is its own finding.
  if (!state.desired || facts.runInProgress || observed.foreignPool) return [];
  // Without the resolved content, layers with a source cannot be named by chain id: nothing to judge by.
  const content = state.content ?? (state.desired.layers.some((l) => l.source) ? null : chainLayers(state.desired));
  if (!content) return [];
  // After `down`, devices are meant to be inactive until `up`.
  const mode = state.lastRun?.command === 'down' ? 'down' : 'converge';
  return driftOf({ desired: state.desired, state, observed, content, mode }).map((d) =>
    d.undeclaredCommit
      ? {
          // Right after `thinlayer commit`, until a manifest declares the layer: the user's next move, not damage.
          code: 'layer.undeclared',
          severity: 'info' as const,
          subject: d.subject,
          message: `${d.message}: the next apply deletes it unless its manifest declares it`,
          repair: 'declare it in the manifest (thinlayer commit printed the lines), then thinlayer apply',
        }
      : {
          code: 'drift',
          severity: 'error' as const,
          subject: d.subject,
          message: `${d.message}: the desired state is not reached`,
          repair: mode === 'down' ? 'thinlayer down' : applyCommand(state),
        },
  );
}

/** The last run started and never finished (killed, crashed), or was interrupted (SIGINT, SIGTERM). */
export function interruptedRunFindings(facts: DoctorFacts): Finding[] {
  const run = facts.state.lastRun;
  if (!run || facts.runInProgress || (run.outcome !== 'running' && run.outcome !== 'interrupted')) return [];
  // The snapshotter's run lasts as long as it serves (src/snapshotter/snapshot-steps.ts), holding the
  // lock only for bursts: unfinished while a snapshotter is alive is it serving, not killed.
  if (run.command === 'snapshotter' && run.outcome === 'running' && facts.liveHolders?.includes('snapshotter')) return [];
  const how = run.outcome === 'running' ? 'started and never finished: it was killed or crashed' : 'was interrupted (SIGINT or SIGTERM) before it finished';
  const again = run.command === 'apply' ? applyCommand(facts.state) : run.command === 'gc' ? 'thinlayer gc --yes' : `thinlayer ${run.command}`;
  return [
    {
      code: 'run.interrupted',
      severity: 'warning',
      subject: 'log',
      message: `thinlayer ${run.command} (run ${run.runId}) ${how}; its work may be half done`,
      repair: `${again} (the same command again finishes it)`,
    },
  ];
}
