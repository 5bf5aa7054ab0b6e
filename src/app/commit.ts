// `thinlayer commit DEVICE LAYER`: a device's current state becomes a layer, in O(1) of its size.
//
// 1. The device is snapshotted (create_snap, the device suspended meanwhile when it is active, which
//    flushes and freezes its filesystem): the new thin device holds exactly that state, and nothing
//    is copied or extracted again.
// 2. That snapshot and the device's layer are read side by side (read-only, as `diff` reads them),
//    and their difference is stored as an OCI layer tar under its digest in the state dir's blobs/.
//    Reading the snapshot rather than the device gives the tar of exactly what the layer holds, even
//    while the device is written to.
// 3. The snapshot becomes the layer of that content: its record moves to the chain id's key, as a
//    layer an `apply` would have built from the tar. A manifest that declares the layer (the lines
//    printed) therefore finds it made, and its devices are snapshots of it.
//
// Every change is a step (intent, outcome). Killed in the middle, the snapshot is left recorded
// under its temporary name, wanted by nothing: the next commit deletes it first, and so does apply.

import { UserError, StateError } from '../errors/index.ts';
import { Session, type SessionOptions } from '../engine/session.ts';
import { withRun } from '../engine/with-run.ts';
import { makeStep, type Step } from '../model/step-contract.ts';
import type { ThingRecord } from '../model/engine-state.ts';
import { thingKey, dmIdentity } from '../domain/names.ts';
import { chainHex } from '../plan/layer-chain.ts';
import { deleteStep, snapshotStep, deactivateStep } from '../plan/step-writer.ts';
import { describeThing } from '../lifecycle/projection.ts';
import { chainId } from '../layers/digest.ts';
import { diffTrees } from '../layers/tree-diff.ts';
import { changeTar } from '../layers/change-tar.ts';
import { storeBlob, writeWhole } from '../layers/blob-store.ts';
import type { Reporter } from '../messages/message-port.ts';
import { openForReading, leftoverReading } from './open-for-reading.ts';

export interface CommitOptions {
  session: Omit<SessionOptions, 'mutate' | 'command' | 'reporter'>;
  reporter: Reporter;
  device: string;
  /** The new layer's name, as a manifest will declare it. */
  layer: string;
  /** Also write the layer tar here (replaced whole). */
  output?: string;
}

export interface CommitResult {
  device: string;
  layer: string;
  /** The manifest layer it is a child of (null: the base). */
  parent: string | null;
  chainId: string;
  diffId: string;
  /** The layer tar in the state dir's store, and its size. */
  blob: string;
  bytes: number;
  changes: number;
  /** The layer's thin id. */
  thinId: number;
  /** False when a layer of that content and parent was made already: the new snapshot was dropped. */
  created: boolean;
  /** The manifest lines that declare the layer. */
  manifest: string;
}

const LAYER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** The temporary name of a commit's snapshot, until it is a layer of its chain id. */
const PENDING = 'commit-';

function refuse(message: string, path: string, expected: string, code: 'E_USAGE' | 'E_NO_SUCH_DEVICE' = 'E_USAGE'): never {
  throw new UserError(message, { path, expected }, code);
}

/** The lines a manifest declares the committed layer with. */
function manifestLines(layer: string, parent: string | null, blob: string): string {
  return ['layers:', `  ${layer}:`, ...(parent ? [`    parent: ${parent}`] : []), `    source: ${blob}`].join('\n');
}

/** The steps that take a commit's leftover snapshot away: unmounted, deactivated, deleted. */
async function leftoverSteps(s: Session, t: ThingRecord): Promise<Step[]> {
  const who = describeThing(t);
  const steps = await leftoverReading(s, t);
  if (steps.length === 0 && (await s.kernel.info(t.dmName))) steps.push(deactivateStep(t, who));
  steps.push(deleteStep(t, `${who}, left by an interrupted commit,`));
  return steps;
}

/**
 * The intents an interrupted commit left in doubt on what this one has just put back (its snapshot,
 * deleted; the layer it was reading, unmounted and deactivated) are settled, with the state the
 * kernel now shows, as a converging run settles the intents it finds.
 */
async function settleLeftovers(s: Session, runId: string, keys: string[]): Promise<void> {
  const open = Object.values(s.state.pending).filter((p) => keys.includes(p.target) && !p.stepId.startsWith(`${runId}:`));
  if (open.length === 0) return;
  const notes = [];
  for (const p of open.sort((a, b) => a.seq - b.seq)) {
    const t = s.state.things[p.target];
    const info = t ? await s.kernel.info(t.dmName) : null;
    const observed = t ? { observed: info?.liveTable ? 'activated' : 'created', mountpoint: null } : {};
    notes.push({
      type: 'recovery.note' as const,
      kind: 'intent-resolved' as const,
      detail: { stepId: p.stepId, op: p.op, target: p.target, runId, ...observed },
    });
  }
  await s.append(notes);
}

export async function commitDevice(opts: CommitOptions): Promise<CommitResult> {
  if (!LAYER_NAME.test(opts.layer))
    refuse(`"${opts.layer}" is not a layer name`, 'LAYER', 'a name of letters, digits, ".", "_" and "-" (64 at most), starting with a letter or digit');
  const s = await Session.open({ ...opts.session, reporter: opts.reporter, mutate: true, command: 'commit' });
  try {
    const device = s.state.things[thingKey('device', opts.device)];
    if (!device)
      refuse(`no device named "${opts.device}" is recorded in ${s.stateDir.root}`, 'DEVICE', 'the name of a device in the manifest', 'E_NO_SUCH_DEVICE');
    if (s.state.desired?.layers.some((l) => l.name === opts.layer))
      refuse(`the manifest already declares a layer named "${opts.layer}"`, 'LAYER', 'a name no layer of the manifest has');
    const layer = device.origin ? s.state.things[device.origin] : undefined;
    if (!layer?.ready) throw new StateError(`the layer device ${opts.device} was made from (${device.origin ?? 'none'}) is not recorded as made`);
    if (device.originThinId !== undefined && device.originThinId !== layer.thinId)
      throw new StateError(`device ${opts.device} is a snapshot of an older build of its layer; run \`thinlayer apply\` first`);
    if (Object.values(s.state.pending).some((p) => p.target === device.key))
      throw new StateError(`a change of device ${opts.device} was interrupted; run \`thinlayer apply\` or \`thinlayer up\` to finish it first`);
    if (device.sizeBytes !== layer.sizeBytes)
      refuse(
        `device ${opts.device} (${device.sizeBytes} bytes) is larger than its layer (${layer.sizeBytes} bytes); a layer has its parent's size`,
        'DEVICE',
        'a device of its layer size',
      );
    const pool = s.state.pool;
    const filesystem = s.state.desired?.pool.filesystem ?? s.state.poolSpec?.filesystem;
    if (!pool || !filesystem || !(await s.kernel.info(pool.dmName))?.liveTable)
      throw new StateError(`the pool of ${s.stateDir.root} is not active: run \`thinlayer up\` first`, 'E_NO_POOL');
    const parentChain = layer.kind === 'layer' ? layer.digest : null;
    const parentName = layer.kind === 'layer' ? (device.layer ?? layer.label ?? layer.name) : null;

    return await withRun(s, 'commit', async (r) => {
      await r.start(s);
      const run = async (steps: Step[]) => {
        await r.execute(s, steps, pool.dmName, { reporter: opts.reporter });
      };
      // What an interrupted commit left: its snapshot, not yet a layer, and the layer it was reading.
      const leftovers = Object.values(s.state.things).filter((t) => t.kind === 'layer' && t.name.startsWith(PENDING) && t.committedFrom !== undefined);
      for (const t of leftovers) await run(await leftoverSteps(s, t));
      const reading = await leftoverReading(s, layer);
      if (reading.length > 0) await run(reading);
      await settleLeftovers(s, r.runId, [...leftovers.map((t) => t.key), layer.key]);

      // 1. The snapshot of the device.
      const thinId = s.state.pool!.nextThinId;
      const name = `${PENDING}${thinId}`;
      const target = {
        key: thingKey('layer', name),
        kind: 'layer' as const,
        name,
        thinId,
        sizeBytes: device.sizeBytes,
        ...dmIdentity(pool.name, 'layer', name, s.state.identity),
      };
      await run([
        snapshotStep(target, device, { who: `layer ${opts.layer}`, originWho: describeThing(device), ready: false, label: opts.layer, lineage: layer }),
      ]);

      // 2. Its difference from the layer, stored by digest.
      const made = s.state.things[target.key];
      const undo: Step[] = [];
      let stored: ReturnType<typeof storeBlob>;
      let changes: number;
      try {
        const lower = await openForReading(s, layer, filesystem, run);
        undo.unshift(...lower.undo);
        const upper = await openForReading(s, made, filesystem, run);
        undo.unshift(...upper.undo);
        const changed = await diffTrees(lower.files, upper.files);
        changes = changed.length;
        stored = storeBlob(s.stateDir.path('blobs'), changeTar(upper.files, changed));
        if (opts.output) writeWhole(opts.output, changeTar(upper.files, changed));
      } finally {
        if (undo.length > 0) await run(undo);
      }

      // 3. The snapshot becomes the layer of that content, unless one was made already.
      const chain = chainId(parentChain, stored.digest);
      const key = thingKey('layer', chainHex(chain));
      const existing = s.state.things[key];
      if (existing) await run([deleteStep(s.state.things[target.key], `layer ${opts.layer}'s new snapshot, a layer of that content being there already,`)]);
      else
        await run([
          makeStep(
            'layer.adopt',
            target.key,
            'create',
            {
              dmName: made.dmName,
              key,
              name: chainHex(chain),
              ...(({ dmName, uuid }) => ({ newDmName: dmName, newUuid: uuid }))(dmIdentity(pool.name, 'layer', chainHex(chain), s.state.identity)),
              chainId: chain,
              diffId: stored.digest,
              label: opts.layer,
            },
            `make the snapshot layer ${opts.layer} (${chainHex(chain)})`,
          ),
        ]);
      const result = s.state.things[key];
      if (!result) throw new StateError(`layer ${opts.layer} is not recorded after its commit`);
      return {
        device: opts.device,
        layer: opts.layer,
        parent: parentName,
        chainId: chain,
        diffId: stored.digest,
        blob: stored.path,
        bytes: stored.bytes,
        changes,
        thinId: result.thinId,
        created: !existing,
        manifest: manifestLines(opts.layer, parentName, stored.path),
      };
    });
  } finally {
    await s.close();
  }
}
