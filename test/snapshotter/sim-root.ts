// What a snapshot's root holds on the simulated kernel, read back as containerd would see it: its
// device's length, the size its filesystem says it has (the simulator's record of the filesystem,
// which mkfs, resize2fs and xfs_growfs keep), and a file read through a read-only mount.

import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as api from '../../src/api/index.ts';
import { SimKernel } from '../../src/kernel/sim/sim-kernel.ts';
import { readMetadataHeader } from '../../src/kernel/sim/metadata-header.ts';
import { PersistentStore } from '../../src/kernel/sim/persistent-store.ts';
import { readFsState } from '../../src/kernel/sim/sim-fs.ts';
import { filesAt } from '../../src/kernel/kernel-port.ts';
import type { Filesystem } from '../../src/model/manifest.ts';
import type { ThingRecord } from '../../src/model/engine-state.ts';

export interface SimRoot {
  /** The device's size as the log records it, and as its live table has it. */
  recordedBytes: number;
  deviceBytes: number;
  filesystemBytes: number;
  /** The root's entries, and `file`'s text when asked (null when it is not there). */
  entries: string[];
  text: string | null;
}

export async function simRoot(stateDir: string, key: string, fs: Filesystem, file?: string, namespace = ''): Promise<SimRoot> {
  const s = await api.Session.open({ stateDir, backend: 'sim', reporter: { notify() {} }, mutate: false, command: 'check' });
  let thing: ThingRecord | undefined;
  try {
    const record = Object.values(s.state.snapshots).find((r) => r.namespace === namespace && r.key === key);
    if (!record) throw new Error(`no snapshot ${key}`);
    thing = s.state.things[record.id];
    if (!thing) throw new Error(`no device for snapshot ${key}`);
  } finally {
    await s.close();
  }
  const header = readMetadataHeader(join(stateDir, 'metadata.img'));
  if (header.kind !== 'pool') throw new Error('the metadata file holds no pool');
  const store = new PersistentStore(join(stateDir, 'sim', 'persistent'), false);
  store.journal.refresh();
  const fsState = readFsState(store.fsStateFile(header.poolId, thing.thinId));
  const sim = new SimKernel({ dir: join(stateDir, 'sim') });
  const at = mkdtempSync(join(tmpdir(), 'thinlayer-root-'));
  try {
    const devPath = `/dev/mapper/${thing.dmName}`;
    const deviceBytes = await sim.blockDeviceSize(devPath);
    await sim.mount(devPath, at, fs, { readOnly: true });
    try {
      const root = filesAt(sim, at);
      let text: string | null = null;
      if (file) {
        try {
          text = readFileSync(join(root, file), 'utf8');
        } catch {
          text = null;
        }
      }
      return { recordedBytes: thing.sizeBytes, deviceBytes, filesystemBytes: fsState?.sizeBytes ?? 0, entries: readdirSync(root).sort(), text };
    } finally {
      await sim.unmount(at);
    }
  } finally {
    await sim.close();
    rmSync(at, { recursive: true, force: true });
  }
}

/** Writes `file` in the root of an active snapshot (as a container would) through a mount of the source Mounts gave. */
export async function writeInRoot(stateDir: string, source: string, fs: Filesystem, file: string, text: string): Promise<void> {
  // The snapshotter's device node is named after the device; the simulated kernel knows it by that name.
  const dmName = source.split('/').pop();
  const sim = new SimKernel({ dir: join(stateDir, 'sim') });
  const at = mkdtempSync(join(tmpdir(), 'thinlayer-root-'));
  try {
    await sim.mount(`/dev/mapper/${dmName}`, at, fs);
    try {
      writeFileSync(join(filesAt(sim, at), file), text);
    } finally {
      await sim.unmount(at);
    }
  } finally {
    await sim.close();
    rmSync(at, { recursive: true, force: true });
  }
}
