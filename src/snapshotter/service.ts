// containerd's snapshotter semantics on thinlayer's engine (containerd's snapshots/snapshotter.go and
// its storage package say what each call must do; the conformance suite checks it):
// - a snapshot is a thin device of the pool, kept in the projection as a thing of kind `snapshot`
//   named by its thin id (so no key, however long or odd, reaches a device-mapper name), and a
//   record (src/events/types.ts SnapshotRecord) that says what containerd knows of it;
// - Prepare and View: create_snap of the parent (a committed snapshot) or of the pool's base, the
//   device activated (a snapshot of the base has lost+found taken out of its root: empty-root.ts),
//   then the record appended: a crash before the record leaves a device that
//   recovery deletes, never a half-made snapshot containerd can see;
// - Commit: the active device deactivated, then its record renamed and marked committed in one
//   event; Remove: the record removed first, then the device and its thin id deleted;
// - metadata messages to the pool go one at a time (thin ids are allocated under the same mutex);
//   activations, Mounts, Stat, List and Usage of active devices do not wait for them;
// - requests on the same key (and its parent) take turns, and every check (the key free, the parent
//   there and committed, no children) is made inside the session that makes the change, on the log
//   as it stands then (Session.refresh), never on the view the last session left;
// - a snapshot exists in full or not at all, whatever runs beside it. Between its create_snap and its
//   record a Prepare's device has no record, and during a Remove the device outlives its record:
//   both look like what a crash leaves. So each holds a reservation on its thin device's key
//   (#inFlight) from before create_snap (taken under the metadata mutex, which Cleanup takes too)
//   until the record is written, or from before the record is removed until the device is deleted;
//   Cleanup deletes only record-less devices that no call holds. A reservation rather than a
//   "pending" record in the log: the log's format and every reader of records stay as they are, and
//   after a crash there is no call in flight, so start-up recovery needs no reservation to honour.

import type { KernelPort } from '../kernel/kernel-port.ts';
import type { Filesystem } from '../model/manifest.ts';
import type { Reporter } from '../messages/message-port.ts';
import type { StateDir } from '../events/state-dir.ts';
import type { Session } from '../engine/session.ts';
import type { SnapshotRecord } from '../model/events.ts';
import { nextFreeThinId } from '../lifecycle/projection.ts';
import type { EngineState, ThingRecord } from '../model/engine-state.ts';
import { dmIdentity, thingKey } from '../domain/names.ts';
import { parseThinStatus } from '../kernel/thin-pool.ts';
import type { SessionGate } from './session-gate.ts';
import { KeyedLocks, Mutex } from './serial.ts';
import { RecordIndex, scoped, parentName, fieldsOf } from './records.ts';
import { compileFilters } from './filters.ts';
import { SnapshotError, notFound, alreadyExists } from './errors.ts';
import { nowText } from './clock.ts';
import { checkKey, checkLabels } from './request-limits.ts';
import { DeviceNodes } from './device-node.ts';
import { snapCreate, activate, deactivate, remove, type RunSteps } from './snapshot-steps.ts';
import { deleteOrphans } from './recovery.ts';
import { emptyRoot, releaseLeftMount } from './empty-root.ts';
import { growRoot, snapshotSize } from './root-size.ts';
import { SECTOR_BYTES } from '../model/units.ts';
import { refuseBelowFloor, type PoolFloor } from './pool-floor.ts';
import { applyDeviceAccess, deviceAccessOf } from './device-access.ts';

export type Kind = 'active' | 'view' | 'committed';

export interface Mount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

export interface Info {
  name: string;
  parent: string;
  kind: Kind;
  /** Nanoseconds since the epoch, as decimal text. */
  created: string;
  updated: string;
  labels: Record<string, string>;
}

export interface ServiceOptions {
  gate: SessionGate;
  /** The kernel for reads outside sessions (device info, thin status). */
  kernel: KernelPort;
  runSteps: RunSteps;
  pool: string;
  filesystem: Filesystem;
  stateDir: StateDir;
  reporter: Reporter;
  /** pool.minFree: Prepare and View refused below it (none: no floor). */
  floor?: PoolFloor;
  /** The manifest's `snapshotter.writableSize`: the least size of an active snapshot (root-size.ts). */
  writableSizeBytes?: number | null;
}

export class SnapshotService {
  readonly #index = new RecordIndex();
  readonly #keys = new KeyedLocks();
  /** Pool metadata messages (create_snap, delete) one at a time; thin ids are allocated under it too. */
  readonly #metadata = new Mutex();
  /** Thin device keys (`snapshot:N`) that a call is making or removing: Cleanup leaves them alone. */
  readonly #inFlight = new Map<string, number>();
  /** The device path Mounts answers with, found once per device (a read makes no file checks after). */
  readonly #nodes = new DeviceNodes();

  constructor(private readonly o: ServiceOptions) {}

  get #state(): EngineState {
    return this.o.gate.state;
  }

  #records(): RecordIndex {
    return this.#index.of(this.#state);
  }

  #find(namespace: string, key: string): SnapshotRecord {
    const r = this.#records().get(namespace, key);
    if (!r) throw notFound(`snapshot ${key}`);
    return r;
  }

  /** The records as the log stands now, inside the session that is about to change them. */
  async #recordsNow(s: Session): Promise<RecordIndex> {
    await s.refresh();
    return this.#index.of(s.state);
  }

  async #findNow(s: Session, namespace: string, key: string): Promise<SnapshotRecord> {
    const r = (await this.#recordsNow(s)).get(namespace, key);
    if (!r) throw notFound(`snapshot ${key}`);
    return r;
  }

  #reserve(thingKey: string): void {
    this.#inFlight.set(thingKey, (this.#inFlight.get(thingKey) ?? 0) + 1);
  }

  #unreserve(thingKey: string): void {
    const n = (this.#inFlight.get(thingKey) ?? 0) - 1;
    if (n > 0) this.#inFlight.set(thingKey, n);
    else this.#inFlight.delete(thingKey);
  }

  /** Thin device keys a call is making or removing now (for Cleanup, and tests). */
  inFlight(): ReadonlySet<string> {
    return new Set(this.#inFlight.keys());
  }

  info(r: SnapshotRecord, state: EngineState = this.#state): Info {
    return { name: r.key, parent: parentName(state, r), kind: r.kind, created: r.created, updated: r.updated, labels: { ...r.labels } };
  }

  async prepare(namespace: string, key: string, parent: string, labels: Record<string, string>, kind: 'active' | 'view'): Promise<Mount[]> {
    if (!key) throw new SnapshotError('invalid-argument', 'a snapshot key must not be empty');
    checkKey('the snapshot key', key);
    if (parent) checkKey('the parent key', parent);
    checkLabels(labels);
    deviceAccessOf(labels, kind);
    const locked = parent ? [scoped(namespace, key), scoped(namespace, parent)] : [scoped(namespace, key)];
    return this.#keys.run(locked, () =>
      this.o.gate.run(async (s) => {
        const records = await this.#recordsNow(s);
        if (records.get(namespace, key)) throw alreadyExists(`snapshot ${key}`);
        let parentRecord: SnapshotRecord | null = null;
        if (parent) {
          parentRecord = records.get(namespace, parent) ?? null;
          if (!parentRecord) throw notFound(`parent snapshot ${parent}`);
          if (parentRecord.kind !== 'committed') throw new SnapshotError('invalid-argument', `parent ${parent} is not a committed snapshot`);
        }
        const origin = parentRecord ? s.state.things[parentRecord.id] : s.state.things.base;
        if (!origin?.ready)
          throw new SnapshotError(
            'unavailable',
            parentRecord ? `the thin device of ${parent} is missing (run \`thinlayer doctor\`)` : "the pool's base is not ready",
          );
        const sizeBytes = snapshotSize({ labels, kind, parentBytes: origin.sizeBytes, writableBytes: this.o.writableSizeBytes ?? null });
        const thin = await this.#metadata.run(async () => {
          // Checked in the metadata turn, so that Prepares in parallel each see the space the last one left.
          if (this.o.floor) await refuseBelowFloor(this.o.kernel, this.o.floor);
          const thinId = nextFreeThinId(s.state);
          const name = String(thinId);
          const t = {
            key: thingKey('snapshot', name),
            name,
            ...dmIdentity(this.o.pool, 'snapshot', name, s.state.identity),
            thinId,
            sizeBytes,
          };
          // Reserved before the device exists, in the mutex Cleanup takes: it never sees it unreserved.
          this.#reserve(t.key);
          try {
            await this.o.runSteps(s, [snapCreate(t, origin)]);
          } catch (e) {
            this.#unreserve(t.key);
            throw e;
          }
          // A thin id the pool already held (not made by this log) moves the create to the next free id.
          const made = s.state.things[t.key];
          return made ? { ...t, thinId: made.thinId } : t;
        });
        try {
          try {
            await this.o.runSteps(s, [activate(thin)]);
            if (!parentRecord) await emptyRoot(s, this.o.runSteps, thin, this.o.filesystem);
            if (sizeBytes > origin.sizeBytes) await growRoot(s, this.o.runSteps, thin, this.o.filesystem);
          } catch (e) {
            // No record was made: the device is deleted now (or by Cleanup or the next start).
            await releaseLeftMount(s, this.o.runSteps, thin).catch(() => undefined);
            await this.#metadata.run(() => this.o.runSteps(s, [remove(thin)])).catch(() => undefined);
            throw e;
          }
          const now = nowText();
          await s.append([
            {
              type: 'snapshot.set',
              snapshot: { id: thin.key, namespace, key, kind, parent: parentRecord?.id ?? null, labels: { ...labels }, created: now, updated: now },
            },
          ]);
        } finally {
          this.#unreserve(thin.key);
        }
        return this.#mountsOf(thin, kind, labels);
      }),
    );
  }

  async mounts(namespace: string, key: string): Promise<Mount[]> {
    const r = this.#find(namespace, key);
    if (r.kind === 'committed') throw new SnapshotError('failed-precondition', `snapshot ${key} is committed: only active snapshots and views have mounts`);
    const t = this.#state.things[r.id];
    if (!t) throw notFound(`the thin device of snapshot ${key}`);
    return this.#mountsOf(t, r.kind, r.labels);
  }

  async #mountsOf(t: Pick<ThingRecord, 'key' | 'dmName' | 'uuid' | 'thinId' | 'sizeBytes'>, kind: Kind, labels: Record<string, string>): Promise<Mount[]> {
    let info = await this.o.kernel.info(t.dmName);
    if (!info?.liveTable) {
      // Not active (deactivated behind our back): activate it again, through the log, if its record
      // is still there (a Remove beside this call may have taken it: then the snapshot is gone).
      await this.o.gate.run(async (s) => {
        await s.refresh();
        if (!s.state.snapshots[t.key]) throw notFound(`snapshot of ${t.key}`);
        await this.o.runSteps(s, [activate(t)]);
      });
      info = await this.o.kernel.info(t.dmName);
      if (!info) throw new SnapshotError('unavailable', `the device of ${t.key} could not be activated`);
    }
    const source = await this.#nodes.pathOf(info, this.o.stateDir);
    await applyDeviceAccess(source, deviceAccessOf(labels, kind));
    return [{ type: this.o.filesystem, source, target: '', options: kind === 'view' ? ['ro'] : [] }];
  }

  async commit(namespace: string, name: string, key: string, labels: Record<string, string>): Promise<void> {
    if (!name) throw new SnapshotError('invalid-argument', "a committed snapshot's name must not be empty");
    checkKey("the committed snapshot's name", name);
    checkLabels(labels);
    await this.#keys.run([scoped(namespace, key), scoped(namespace, name)], () =>
      this.o.gate.run(async (s) => {
        const records = await this.#recordsNow(s);
        const r = records.get(namespace, key);
        if (!r) throw notFound(`snapshot ${key}`);
        if (r.kind !== 'active') throw new SnapshotError('failed-precondition', `snapshot ${key} is not active`);
        if (records.get(namespace, name)) throw alreadyExists(`snapshot ${name}`);
        const t = s.state.things[r.id];
        if (t) await this.o.runSteps(s, [deactivate(t)]);
        const now = nowText();
        await s.append([{ type: 'snapshot.set', snapshot: { ...r, key: name, kind: 'committed', labels: { ...labels }, created: now, updated: now } }]);
      }),
    );
  }

  async remove(namespace: string, key: string): Promise<void> {
    await this.#keys.run([scoped(namespace, key)], () =>
      this.o.gate.run(async (s) => {
        const records = await this.#recordsNow(s);
        const r = records.get(namespace, key);
        if (!r) throw notFound(`snapshot ${key}`);
        if (records.hasChildren(r.id)) throw new SnapshotError('failed-precondition', `cannot remove snapshot ${key} with child snapshots: remove them first`);
        // Reserved from before the record goes until the device is deleted: Cleanup waits its turn.
        this.#reserve(r.id);
        try {
          await s.append([{ type: 'snapshot.removed', id: r.id }]);
          const t = s.state.things[r.id];
          if (!t) return;
          try {
            await this.#metadata.run(() => this.o.runSteps(s, [remove(t)]));
            await this.#nodes.forget(t.dmName, this.o.stateDir);
          } catch (e) {
            // containerd no longer sees the snapshot; its device is deleted by Cleanup or the next start.
            this.o.reporter.notify({
              code: 'snapshotter.request-failed',
              method: 'Remove',
              key,
              error: `deleting the device failed, left for Cleanup: ${e instanceof Error ? e.message : String(e)}`,
            });
          }
        } finally {
          this.#unreserve(r.id);
        }
      }),
    );
  }

  stat(namespace: string, key: string): Info {
    return this.info(this.#find(namespace, key));
  }

  async update(namespace: string, info: { name: string; labels: Record<string, string> }, fieldPaths: string[]): Promise<Info> {
    checkKey('the snapshot key', info.name);
    checkLabels(info.labels);
    return this.#keys.run([scoped(namespace, info.name)], () =>
      this.o.gate.run(async (s) => {
        const r = await this.#findNow(s, namespace, info.name);
        let labels: Record<string, string> = { ...r.labels };
        if (fieldPaths.length === 0) labels = { ...info.labels };
        for (const path of fieldPaths) {
          if (path === 'labels') labels = { ...info.labels };
          else if (path.startsWith('labels.')) {
            const label = path.slice('labels.'.length);
            labels[label] = info.labels[label] ?? '';
          } else throw new SnapshotError('invalid-argument', `cannot update the "${path}" field of snapshot ${info.name}: only labels change`);
        }
        for (const [k, v] of Object.entries(labels)) if (v === '') delete labels[k];
        // One label at a time can still add up past the bounds: the result is what is kept.
        checkLabels(labels);
        deviceAccessOf(labels, r.kind);
        const next = { ...r, labels, updated: nowText() };
        await s.append([{ type: 'snapshot.set', snapshot: next }]);
        return this.info(next, s.state);
      }),
    );
  }

  list(namespace: string, filters: string[]): Info[] {
    const match = compileFilters(filters);
    const state = this.#state;
    return this.#records()
      .inNamespace(namespace)
      .filter((r) => match(fieldsOf(state, r)))
      .map((r) => this.info(r, state));
  }

  /** The bytes the pool has mapped for the snapshot's device (inodes are not counted: 0). */
  async usage(namespace: string, key: string): Promise<{ size: number; inodes: number }> {
    const r = this.#find(namespace, key);
    const t = this.#state.things[r.id];
    if (!t) throw notFound(`the thin device of snapshot ${key}`);
    const mapped = async () => {
      const line = (await this.o.kernel.status(t.dmName)).find((l) => l.type === 'thin');
      return line ? parseThinStatus(line.params).mappedSectors * SECTOR_BYTES : 0;
    };
    if ((await this.o.kernel.info(t.dmName))?.liveTable) return { size: await mapped(), inodes: 0 };
    // A committed snapshot's device is not active: activate it for the reading, through the log.
    return this.#keys.run([scoped(namespace, key)], () =>
      this.o.gate.run(async (s) => {
        const now = s.state.things[(await this.#findNow(s, namespace, key)).id];
        if (!now) throw notFound(`the thin device of snapshot ${key}`);
        await this.o.runSteps(s, [activate(now)]);
        try {
          return { size: await mapped(), inodes: 0 };
        } finally {
          await this.o.runSteps(s, [deactivate(now)]);
        }
      }),
    );
  }

  /**
   * Deletes the devices of snapshots that have no record (a Remove whose delete failed, a crash),
   * except those a call in flight is making or removing: their record is about to appear, or their
   * deletion is under way.
   */
  async cleanup(): Promise<number> {
    return this.o.gate.run(async (s) => {
      await s.refresh();
      return this.#metadata.run(() => deleteOrphans(s, this.o.runSteps, (key) => this.#inFlight.has(key)));
    });
  }
}
