// The snapshotter's steps: the same ops, builders (src/plan/step-writer.ts) and executor as apply's,
// so each change is an intent in the log before the kernel is touched and an outcome after, and
// recovery and doctor read them as they read apply's. A device is named by its key (`snapshot:N`).
//
// They all run in one run per serving process (src/engine/with-run.ts; started at start-up, finished
// at a clean stop: src/snapshotter/command.ts), not one per call: a call is a few steps, and two
// more events for each would grow the log by half under containerd's load; the process's one run
// says what a run says of apply: while it is unfinished and no snapshotter serves, the snapshotter
// was killed, and starting it again finishes the work (its start-up recovery).

import type { Step } from '../model/step-contract.ts';
import type { DmInfo } from '../kernel/kernel-port.ts';
import type { Filesystem } from '../model/manifest.ts';
import type { Run } from '../engine/with-run.ts';
import type { Session } from '../engine/session.ts';
import type { Reporter } from '../messages/message-port.ts';
import { activateStep, deactivateStep, deleteStep, mountStep, snapshotStep, unmountStep, type ThinStepTarget } from '../plan/step-writer.ts';

type Thin = ThinStepTarget;

/** Not ready when made larger than its origin, until its filesystem is grown (root-size.ts). */
export function snapCreate(t: Thin & { name: string }, origin: Thin): Step {
  return snapshotStep({ ...t, kind: 'snapshot' }, origin, { who: t.key, originWho: origin.key, ready: t.sizeBytes <= origin.sizeBytes });
}

export function activate(t: Thin): Step {
  return activateStep(t, t.key);
}

export function deactivate(t: Thin): Step {
  return deactivateStep(t, t.key);
}

export function remove(t: Thin): Step {
  return deleteStep(t, t.key);
}

export function mount(t: Thin, mountpoint: string, filesystem: Filesystem): Step {
  return mountStep(t, t.key, { mountpoint, filesystem, readOnly: false });
}

export function unmount(t: Thin, mountpoint: string): Step {
  return unmountStep(t, mountpoint, `unmount ${t.key} from ${mountpoint}`);
}

/** Runs steps in the session given, as steps of the serving process's run. */
export type RunSteps = (session: Session, steps: Step[], observed?: Record<string, DmInfo>) => Promise<void>;

/** The snapshotter's steps, run through the engine's executor as steps of `run` (their ids unique for the life of the process). */
export function stepsOf(run: Run, poolDmName: string, reporter: Reporter): RunSteps {
  return async (session, steps, observed) => {
    await run.execute(session, steps, poolDmName, { reporter, observed });
  };
}
