// The thin ids in a simulated pool's metadata (KernelPort.listThinIds and thinMappedBytes on the simulator): its pool
// model is the metadata, so it is read directly, the way thin_ls reads a real metadata device. The
// metadata file's header names the pool in the simulator's persistent store (metadata-header.ts).

import type { LoopDevice } from '../kernel-port.ts';
import { readMetadataHeader } from './metadata-header.ts';
import type { PersistentStore } from './persistent-store.ts';
import { SECTOR_BYTES } from '../../model/units.ts';
import { StateError } from '../../errors/index.ts';

export function simThinIds(store: PersistentStore, loops: LoopDevice[], metadataDevPath: string): number[] {
  return poolModel(store, loops, metadataDevPath).thinIds();
}

/** The bytes one thin id maps (KernelPort.thinMappedBytes on the simulator). */
export function simMappedBytes(store: PersistentStore, loops: LoopDevice[], metadataDevPath: string, thinId: number): number {
  const model = poolModel(store, loops, metadataDevPath);
  if (!model.hasThin(thinId)) throw new StateError(`the pool holds no thin id ${thinId}`, 'E_THIN_IDS');
  return model.mappedBlocks(thinId) * model.blockSectors * SECTOR_BYTES;
}

function poolModel(store: PersistentStore, loops: LoopDevice[], metadataDevPath: string) {
  const loop = loops.find((l) => l.path === metadataDevPath);
  const file = loop ? loop.backingFile : metadataDevPath;
  const header = readMetadataHeader(file);
  if (header.kind !== 'pool') throw new StateError(`${file} holds no pool metadata (${header.kind})`, 'E_THIN_IDS');
  const model = store.pool(header.poolId);
  if (!model) throw new StateError(`the simulated kernel holds no metadata for pool ${header.poolId}`, 'E_THIN_IDS');
  return model;
}
