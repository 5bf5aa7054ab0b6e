// Observe: one read of everything the planner needs from the kernel and the state dir. No mutation.

import { open, stat } from 'node:fs/promises';
import type { KernelPort, DmInfo, MountEntry } from '../kernel/kernel-port.ts';
import type { PoolSpec, Backing } from '../model/manifest.ts';
import type { StateDir } from '../events/state-dir.ts';
import { parsePoolStatus } from '../kernel/thin-pool.ts';
import { splitDevT } from '../kernel/dev-t.ts';
import { identityOfUuid } from '../domain/names.ts';
import { describeOwner, ownershipJudge, type OwnerView } from '../domain/ownership.ts';
import { poolIdentity } from '../lifecycle/current-pool.ts';
import type { Observation, BackingObservation, ForeignPool } from '../plan/observation.ts';

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
  const dev = st?.isBlockDevice() ? splitDevT(st.rdev) : null;
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

/** The pool table's metadata and data devices (`<meta> <data> <block> <low water> ...`). */
export function poolTableDevices(params: string): { metadata: string; data: string } | null {
  const [metadata, data] = params.trim().split(/\s+/);
  return metadata && data ? { metadata, data } : null;
}

/** The thin table's pool and thin id (`<pool major:minor> <thin id>`). */
export function thinTableTarget(params: string): { pool: string; thinId: number } | null {
  const [pool, id] = params.trim().split(/\s+/);
  return pool && /^\d+$/.test(id ?? '') ? { pool, thinId: Number(id) } : null;
}

/** Whose backing file a loop device of a foreign pool shows, for the message that names its owner. */
async function foreignBackingFiles(kernel: KernelPort, params: string | null): Promise<string[]> {
  const devs = params ? poolTableDevices(params) : null;
  if (!devs) return [];
  const loops = await kernel.loopList().catch(() => []);
  return loops.filter((l) => `${l.major}:${l.minor}` === devs.data || `${l.major}:${l.minor}` === devs.metadata).map((l) => l.backingFile);
}

export async function observeSystem(kernel: KernelPort, stateDir: StateDir, pool: PoolSpec | null, owner: OwnerView): Promise<Observation> {
  const [all, mountTable] = await Promise.all([kernel.listDevices(), kernel.mounts()]);
  const judge = ownershipJudge(owner);
  const devices: Record<string, DmInfo> = {};
  for (const d of all) if (judge(d) !== 'foreign') devices[d.name] = d;
  const owned = new Set(Object.values(devices).map((d) => `${d.major}:${d.minor}`));
  const mounts: Record<string, MountEntry> = {};
  for (const m of mountTable) if (owned.has(`${m.major}:${m.minor}`)) mounts[m.mountpoint] = m;

  if (!pool) return { backend: kernel.kind, data: null, metadata: null, metadataBlank: true, pool: null, foreignPool: null, devices, mounts };

  const [data, metadata] = await Promise.all([observeBacking(kernel, stateDir, pool.data), observeBacking(kernel, stateDir, pool.metadata)]);
  const identity = poolIdentity(owner, pool.name);
  const { dmName } = identity;
  let poolObs: Observation['pool'] = null;
  let foreignPool: ForeignPool | null = null;
  const named = all.find((d) => d.name === dmName);
  if (named) {
    // Ours only with exactly our uuid and a table on our own backing devices: a pool of the same
    // name made by another state dir (or by one whose log was lost) is never adopted.
    const table = named.liveTable ? await kernel.table(dmName).catch(() => []) : [];
    const line = table.find((t) => t.type === 'thin-pool');
    const devs = line ? poolTableDevices(line.params) : null;
    const ourTable = devs !== null && devs.metadata === metadata.majorMinor && devs.data === data.majorMinor;
    if (named.uuid !== identity.uuid || (named.liveTable && !ourTable)) {
      delete devices[dmName];
      const why =
        named.uuid !== identity.uuid
          ? `its uuid is "${named.uuid}", not this state directory's "${identity.uuid}"`
          : `its table names devices ${devs ? `${devs.metadata} and ${devs.data}` : '(none)'}, not this state directory's backing ${metadata.majorMinor ?? '(not attached)'} and ${data.majorMinor ?? '(not attached)'}`;
      foreignPool = {
        dmName,
        uuid: named.uuid,
        owner: describeOwner(named.uuid),
        identity: identityOfUuid(named.uuid),
        backingFiles: await foreignBackingFiles(kernel, line?.params ?? null),
        why,
      };
    } else if (named.liveTable) {
      const lines = await kernel.status(dmName);
      const statusLine = lines.find((l) => l.type === 'thin-pool');
      if (statusLine) poolObs = { info: named, status: parsePoolStatus(statusLine.params) };
    }
  }
  const metadataBlank = metadata.exists ? await isBlank(metadata.path) : true;
  return { backend: kernel.kind, data, metadata, metadataBlank, pool: poolObs, foreignPool, devices, mounts };
}
