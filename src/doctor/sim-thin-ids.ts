// Thin ids on the simulated kernel: its pool model is the metadata, so it is read directly, the way
// thin_ls reads a real metadata device. The metadata file's header names the pool in the
// simulator's persistent store (src/kernel/sim/metadata-header.ts).

import path from 'node:path';
import type { KernelPort } from '../kernel/port.ts';
import { readMetadataHeader } from '../kernel/sim/metadata-header.ts';
import { PersistentStore } from '../kernel/sim/persistent-store.ts';
import type { ThinIdReader } from './thin-ids.ts';

export class SimThinIdReader implements ThinIdReader {
  constructor(
    private readonly kernel: KernelPort,
    /** The simulator's directory (SimKernel's `dir`). */
    private readonly simDir: string,
  ) {}

  async listThinIds(poolDmName: string, metadataDevPath: string): Promise<number[]> {
    return (await this.model(poolDmName, metadataDevPath)).thinIds();
  }

  async mappedBytes(poolDmName: string, metadataDevPath: string, thinId: number): Promise<number> {
    const model = await this.model(poolDmName, metadataDevPath);
    if (!model.hasThin(thinId)) throw new Error(`the pool holds no thin id ${thinId}`);
    return model.mappedBlocks(thinId) * model.blockSectors * 512;
  }

  private async model(_poolDmName: string, metadataDevPath: string) {
    const loop = (await this.kernel.loopList()).find((l) => l.path === metadataDevPath);
    const file = loop ? loop.backingFile : metadataDevPath;
    const header = readMetadataHeader(file);
    if (header.kind !== 'pool') throw new Error(`${file} holds no pool metadata (${header.kind})`);
    const store = new PersistentStore(path.join(this.simDir, 'persistent'), false);
    store.journal.refresh();
    const model = store.pool(header.poolId);
    if (!model) throw new Error(`the simulated kernel holds no metadata for pool ${header.poolId}`);
    return model;
  }
}
