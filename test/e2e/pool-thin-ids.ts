// The thin ids in a simulated pool's metadata, read the way thin_ls reads a real pool's: from the
// metadata device (here, the simulator's persistent store behind the metadata file's header).

import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { readMetadataHeader } from '../../src/kernel/sim/metadata-header.ts';
import { PersistentStore } from '../../src/kernel/sim/persistent-store.ts';

export async function poolThinIds(stateDir: string, metadataFile = 'metadata.img'): Promise<number[]> {
  const file = join(stateDir, metadataFile);
  if (!existsSync(file)) return [];
  const header = readMetadataHeader(file);
  if (header.kind !== 'pool') return [];
  const store = new PersistentStore(join(stateDir, 'sim', 'persistent'), false);
  store.journal.refresh();
  return store.pool(header.poolId)?.thinIds() ?? [];
}
