// `thinlayer diff DEVICE`: what changed in a device against the layer it was made from, listed as
// `docker diff` lists it, and optionally written as an OCI layer tar (layers/change-tar.ts).
//
// Both trees are read, never written: a device that is mounted is read where it is; the layer, and a
// device that is not mounted, are mounted read-only at a private mountpoint in the state dir for the
// reading and put back as they were after it. Those mounts and activations are steps like any other
// (an intent before, an outcome after), so a crash in the middle leaves what the log shows, and the
// next `apply` or `up` puts the layer back down (it is not desired mounted).

import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync, constants } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UserError, StateError } from '../errors/index.ts';
import { Session, type SessionOptions } from '../engine/session.ts';
import { withRun } from '../engine/with-run.ts';
import { filesAt } from '../kernel/kernel-port.ts';
import { makeStep, type Step } from '../model/step-contract.ts';
import { chainHex } from '../plan/layer-chain.ts';
import { describeThing } from '../lifecycle/projection.ts';
import type { ThingRecord } from '../model/engine-state.ts';
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

/** How a thin device is being read: where its files are, and the steps that put it back after. */
interface Reading {
  files: string;
  undo: Step[];
}

async function openForReading(s: Session, t: ThingRecord, filesystem: 'ext4' | 'xfs', run: (steps: Step[]) => Promise<void>): Promise<Reading> {
  const info = await s.kernel.info(t.dmName);
  if (t.lifecycle.state === 'mounted' && t.mountpoint && info?.liveTable) {
    return { files: filesAt(s.kernel, t.mountpoint), undo: [] };
  }
  const steps: Step[] = [];
  const undo: Step[] = [];
  const thin = { dmName: t.dmName, uuid: t.uuid, thinId: t.thinId, sizeBytes: t.sizeBytes };
  if (!info?.liveTable) {
    steps.push(makeStep('thin.activate', t.key, 'update', thin, `activate ${describeThing(t)} to read it`));
    undo.unshift(makeStep('thin.deactivate', t.key, 'update', { dmName: t.dmName }, `deactivate ${describeThing(t)} again`));
  }
  // The private mountpoints live in the state dir's mnt/, made 0700 as layer commits make it.
  await mkdir(s.stateDir.path('mnt'), { recursive: true, mode: 0o700 });
  const mountpoint = s.stateDir.path(join('mnt', `diff-${t.kind === 'layer' ? chainHex(t.name) : `${t.kind}-${t.thinId}`}`));
  steps.push(
    makeStep('fs.mount', t.key, 'update', { dmName: t.dmName, mountpoint, filesystem, readOnly: true }, `mount ${describeThing(t)} read-only to read it`),
  );
  undo.unshift(makeStep('fs.unmount', t.key, 'update', { dmName: t.dmName, mountpoint }, `unmount ${describeThing(t)} from ${mountpoint}`));
  await run(steps);
  return { files: filesAt(s.kernel, mountpoint), undo };
}

/** Writes the tar whole: a private temporary file beside the target, synced, then renamed over it. */
function writeTar(path: string, chunks: Iterable<Buffer>): { diffId: string; bytes: number } {
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for (const chunk of chunks) {
      hash.update(chunk);
      for (let at = 0; at < chunk.length; ) at += writeSync(fd, chunk, at);
      bytes += chunk.length;
    }
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw e;
  }
  closeSync(fd);
  renameSync(temp, path);
  return { diffId: `sha256:${hash.digest('hex')}`, bytes };
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
          if (opts.output) result.tar = { path: opts.output, ...writeTar(opts.output, changeTar(upper.files, changes)) };
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
