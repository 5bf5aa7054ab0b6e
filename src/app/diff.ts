// `thinlayer diff DEVICE`: what changed in a device against the layer it was made from, listed as
// `docker diff` lists it, and optionally written as an OCI layer tar (layers/change-tar.ts).
//
// Both trees are read, never written: a device that is mounted is read where it is; the layer, and a
// device that is not mounted, are mounted read-only at a private mountpoint in the state dir for the
// reading and put back as they were after it. Those mounts and activations are steps like any other
// (an intent before, an outcome after), so a crash in the middle leaves what the log shows, and the
// next `apply` or `up` puts the layer back down (it is not desired mounted).

import { UserError, StateError } from '../errors/index.ts';
import { Session, type SessionOptions } from '../engine/session.ts';
import { withRun } from '../engine/with-run.ts';
import type { Step } from '../model/step-contract.ts';
import { openForReading } from './open-for-reading.ts';
import { writeWhole } from '../layers/blob-store.ts';
import { thingKey } from '../domain/names.ts';
import { diffTrees, type ChangeKind } from '../layers/tree-diff.ts';
import { changeTar } from '../layers/change-tar.ts';
import type { Reporter } from '../messages/message-port.ts';

export interface DiffOptions {
  session: Omit<SessionOptions, 'mutate' | 'command' | 'reporter'>;
  reporter: Reporter;
  device: string;
  /** Write the changes as an OCI layer tar here (replaced whole, never half written). */
  output?: string;
}

export interface DiffResult {
  device: string;
  /** The layer the device was made from, by its manifest name (or `base`). */
  layer: string;
  changes: Array<{ kind: ChangeKind; path: string }>;
  /** With an output: the tar's digest (its diff id) and size. */
  tar?: { path: string; diffId: string; bytes: number };
}

export async function diffDevice(opts: DiffOptions): Promise<DiffResult> {
  const s = await Session.open({ ...opts.session, reporter: opts.reporter, mutate: true, command: 'diff' });
  try {
    const device = s.state.things[thingKey('device', opts.device)];
    if (!device)
      throw new UserError(
        `no device named "${opts.device}" is recorded in ${s.stateDir.root}`,
        { path: 'DEVICE', expected: 'the name of a device in the manifest' },
        'E_NO_SUCH_DEVICE',
      );
    const layer = device.origin ? s.state.things[device.origin] : undefined;
    if (!layer) throw new StateError(`the layer device ${opts.device} was made from (${device.origin ?? 'none'}) is not recorded`);
    const pool = s.state.pool;
    const filesystem = s.state.desired?.pool.filesystem ?? s.state.poolSpec?.filesystem;
    if (!pool || !filesystem || !(await s.kernel.info(pool.dmName))?.liveTable) {
      throw new StateError(`the pool of ${s.stateDir.root} is not active: run \`thinlayer up\` first`, 'E_NO_POOL');
    }
    // A run only when something is mounted or activated for the reading (lazy): a diff of mounted
    // trees leaves no trace in the log.
    return await withRun(
      s,
      'diff',
      async (r) => {
        const run = async (steps: Step[]) => {
          await r.start(s);
          await r.execute(s, steps, pool.dmName, { reporter: opts.reporter });
        };
        const undo: Step[] = [];
        try {
          const lower = await openForReading(s, layer, filesystem, run);
          undo.unshift(...lower.undo);
          const upper = await openForReading(s, device, filesystem, run);
          undo.unshift(...upper.undo);
          const changes = await diffTrees(lower.files, upper.files);
          const result: DiffResult = {
            device: opts.device,
            layer: device.layer ?? layer.label ?? layer.name,
            changes: changes.map((c) => ({ kind: c.kind, path: `/${c.path}` })),
          };
          if (opts.output) {
            const written = writeWhole(opts.output, changeTar(upper.files, changes));
            result.tar = { path: written.path, diffId: written.digest, bytes: written.bytes };
          }
          return result;
        } finally {
          // Put back what was mounted or activated for the reading, whatever happened.
          if (undo.length > 0) await run(undo);
        }
      },
      { lazy: true },
    );
  } finally {
    await s.close();
  }
}
