// The snapshotter's steps: the same ops, arguments and executor as apply's (src/reconcile), so each
// change is an intent in the log before the kernel is touched and an outcome after, and recovery
// and doctor read them as they read apply's.

import type { Step } from '../model/step-contract.ts';
import type { ThingRecord } from '../model/engine-state.ts';
import type { DmInfo } from '../kernel/kernel-port.ts';
import type { Filesystem } from '../model/manifest.ts';
import { executePlan } from '../engine/execute-plan.ts';
import type { Session } from '../engine/session.ts';
import type { Reporter } from '../messages/message-port.ts';

type Thin = Pick<ThingRecord, 'key' | 'dmName' | 'uuid' | 'thinId' | 'sizeBytes'>;

export function snapCreate(t: Thin & { name: string }, origin: ThingRecord): Step {
  return {
    op: 'snap.create',
    target: t.key,
    impact: 'create',
    args: { kind: 'snapshot', name: t.name, dmName: t.dmName, uuid: t.uuid, thinId: t.thinId, sizeBytes: t.sizeBytes, origin: origin.key, originThinId: origin.thinId, originDmName: origin.dmName, ready: true },
    reason: `snapshot ${origin.key} as ${t.key} (thin id ${t.thinId})`,
  };
}

export function activate(t: Thin): Step {
  return { op: 'thin.activate', target: t.key, impact: 'update', args: { dmName: t.dmName, uuid: t.uuid, thinId: t.thinId, sizeBytes: t.sizeBytes }, reason: `activate ${t.key}` };
}

export function deactivate(t: Thin): Step {
  return { op: 'thin.deactivate', target: t.key, impact: 'update', args: { dmName: t.dmName }, reason: `deactivate ${t.key}` };
}

export function remove(t: Thin): Step {
  return { op: 'thin.delete', target: t.key, impact: 'destroy', args: { dmName: t.dmName, uuid: t.uuid, thinId: t.thinId, sizeBytes: t.sizeBytes, discard: true }, reason: `delete ${t.key} (thin id ${t.thinId}) and return its space` };
}

export function mount(t: Thin, mountpoint: string, filesystem: Filesystem): Step {
  return { op: 'fs.mount', target: t.key, impact: 'update', args: { dmName: t.dmName, mountpoint, filesystem, readOnly: false }, reason: `mount ${t.key} at ${mountpoint}` };
}

export function unmount(t: Thin, mountpoint: string): Step {
  return { op: 'fs.unmount', target: t.key, impact: 'update', args: { dmName: t.dmName, mountpoint }, reason: `unmount ${t.key} from ${mountpoint}` };
}

/** Runs steps through the executor, with step ids unique in the log for the life of the process. */
export class StepRunner {
  readonly #runId = `snapshotter-${Date.now().toString(36)}-${process.pid}`;
  #next = 0;

  constructor(
    private readonly poolDmName: string,
    private readonly reporter: Reporter,
  ) {}

  async run(session: Session, steps: Step[], observed?: Record<string, DmInfo>): Promise<void> {
    const firstIndex = this.#next;
    this.#next += steps.length;
    await executePlan(session, steps, this.poolDmName, { runId: this.#runId, reporter: this.reporter, firstIndex, observed });
  }
}
