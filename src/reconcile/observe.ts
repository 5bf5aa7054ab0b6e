// Observe: one read of everything the planner needs from the kernel and the state dir. No mutation.

import { open, stat } from 'node:fs/promises';
import type { KernelPort, DmInfo, MountEntry } from '../kernel/port.ts';
import type { PoolSpec, Backing } from '../manifest/types.ts';
import type { StateDir } from '../events/state-dir.ts';
import { parsePoolStatus } from '../kernel/thin-pool.ts';
import { splitDevT } from '../kernel/dev-t.ts';
import { isOwnedUuid } from '../domain/names.ts';
import { poolIdentity } from '../lifecycle/current-pool.ts';
import type { Observation, BackingObservation } from '../plan/observation.ts';

export function backingPath(stateDir: StateDir, backing: Backing): string {
  return backing.kind === 'file' ? stateDir.path(backing.file) : backing.device;
}


async function observeBacking(kernel: KernelPort, stateDir: StateDir, backing: Backing): Promise<BackingObservation> {
  const path = backingPath(stateDir, backing);
  const st = await stat(path).catch(() => null);
  if (backing.kind === 'file') {
    const loop = st ? await kernel.loopFind(path) : null;
    return { path, kind: 'file', exists: st !== null, sizeBytes: st?.size ?? 0, loop, majorMinor: loop ? `${loop.major}:${loop.minor}` : null };
  }
  const dev = st && st.isBlockDevice() ? splitDevT(st.rdev) : null;
  return {
    path,
    kind: 'device',
    exists: dev !== null,
    sizeBytes: dev ? await kernel.blockDeviceSize(path) : 0,
    loop: null,
    majorMinor: dev ? `${dev.major}:${dev.minor}` : null,
  };
}

/** True when the first 4 KiB are all zero (or the file does not exist): a pool there has never been formatted. */
export async function isBlank(path: string): Promise<boolean> {
  const handle = await open(path, 'r').catch(() => null);
  if (!handle) return true;
  try {
    const buf = Buffer.alloc(4096);
    await handle.read(buf, 0, 4096, 0);
    return buf.every((b) => b === 0);
  } finally {
    await handle.close();
  }
}

export async function observeSystem(kernel: KernelPort, stateDir: StateDir, pool: PoolSpec | null): Promise<Observation> {
  const [all, mountTable] = await Promise.all([kernel.listDevices(), kernel.mounts()]);
  const devices: Record<string, DmInfo> = {};
  for (const d of all) if (isOwnedUuid(d.uuid)) devices[d.name] = d;
  const owned = new Set(Object.values(devices).map((d) => `${d.major}:${d.minor}`));
  const mounts: Record<string, MountEntry> = {};
  for (const m of mountTable) if (owned.has(`${m.major}:${m.minor}`)) mounts[m.mountpoint] = m;

  if (!pool) return { backend: kernel.kind, data: null, metadata: null, metadataBlank: true, pool: null, devices, mounts };

  const [data, metadata] = await Promise.all([observeBacking(kernel, stateDir, pool.data), observeBacking(kernel, stateDir, pool.metadata)]);
  const { dmName } = poolIdentity(pool.name);
  const info = devices[dmName];
  let poolObs: Observation['pool'] = null;
  if (info && info.liveTable) {
    const lines = await kernel.status(dmName);
    const line = lines.find((l) => l.type === 'thin-pool');
    if (line) poolObs = { info, status: parsePoolStatus(line.params) };
  }
  const metadataBlank = metadata.exists ? await isBlank(metadata.path) : true;
  return { backend: kernel.kind, data, metadata, metadataBlank, pool: poolObs, devices, mounts };
}
