// The thin ids in a pool's metadata, on the real kernel (KernelPort.listThinIds). The kernel has no
// message that lists them, so the metadata device itself is read with thin-provisioning-tools,
// through a metadata snapshot so that a pool in use is read consistently:
//   reserve_metadata_snap  ->  thin_ls --metadata-snap (or thin_dump -m)  ->  release_metadata_snap

import { execFile } from 'node:child_process';
import { systemTool } from '../../host/system-tools.ts';
import { promisify } from 'node:util';
import type { KernelPort } from '../kernel-port.ts';
import { StateError, isKernelError } from '../../errors/index.ts';

/** thin_ls -o DEV,MAPPED_BYTES --no-headers: `<id> <bytes>` a line. */
export function parseThinLsMapped(stdout: string, thinId: number): number {
  for (const line of stdout.split('\n')) {
    const [id, bytes] = line.trim().split(/\s+/);
    if (id === String(thinId) && /^\d+$/.test(bytes ?? '')) return Number(bytes);
  }
  throw new StateError(`thin_ls does not list thin id ${thinId}`, 'E_THIN_IDS');
}

/** thin_ls -o DEV --no-headers prints one id a line, padded with spaces. */
export function parseThinLsIds(stdout: string): number[] {
  const ids: number[] = [];
  for (const line of stdout.split('\n')) {
    const word = line.trim();
    if (word === '') continue;
    if (!/^\d+$/.test(word)) throw new StateError(`unexpected thin_ls line: ${JSON.stringify(line)}`, 'E_THIN_IDS');
    ids.push(Number(word));
  }
  return ids.sort((a, b) => a - b);
}

/** thin_dump's XML has one `<device dev_id="N" ...>` element per thin device. */
export function parseThinDumpIds(xml: string): number[] {
  if (!xml.includes('<superblock')) throw new StateError('thin_dump printed no superblock', 'E_THIN_IDS');
  return [...xml.matchAll(/<device\s+dev_id="(\d+)"/g)].map((m) => Number(m[1])).sort((a, b) => a - b);
}

const run = promisify(execFile);

async function tool(name: 'thin_ls' | 'thin_dump', args: string[]): Promise<string> {
  const { stdout } = await run(systemTool(name), args, { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

/** The real kernel: thin_ls (thin_dump when thin_ls fails) on a metadata snapshot. */
export class ThinToolsReader {
  constructor(private readonly kernel: Pick<KernelPort, 'message'>) {}

  async listThinIds(poolDmName: string, metadataDevPath: string): Promise<number[]> {
    const snapshot = await this.reserve(poolDmName);
    try {
      return await readIds(metadataDevPath, snapshot);
    } finally {
      if (snapshot) await this.kernel.message(poolDmName, 'release_metadata_snap');
    }
  }

  async mappedBytes(poolDmName: string, metadataDevPath: string, thinId: number): Promise<number> {
    const snapshot = await this.reserve(poolDmName);
    try {
      const snap = snapshot ? ['--metadata-snap'] : [];
      return parseThinLsMapped(await tool('thin_ls', [...snap, '--no-headers', '-o', 'DEV,MAPPED_BYTES', metadataDevPath]), thinId);
    } finally {
      if (snapshot) await this.kernel.message(poolDmName, 'release_metadata_snap');
    }
  }

  /**
   * Whether a metadata snapshot is now held. Only thinlayer touches an owned pool, and it holds a
   * snapshot only while reading: one that is already held was left by a reader that died, and is
   * replaced by a fresh one. A pool that takes no messages (read-only, out of metadata space)
   * changes no metadata either, so its live metadata is read as it is.
   */
  private async reserve(poolDmName: string): Promise<boolean> {
    try {
      await this.kernel.message(poolDmName, 'reserve_metadata_snap');
      return true;
    } catch (e) {
      if (isKernelError(e, 'EOPNOTSUPP')) return false;
      if (!isKernelError(e, 'EBUSY')) throw e;
      await this.kernel.message(poolDmName, 'release_metadata_snap').catch(() => undefined);
      await this.kernel.message(poolDmName, 'reserve_metadata_snap');
      return true;
    }
  }
}

/** thin_ls first; thin_dump (slower, but in every version of the tools) when thin_ls fails. */
export async function readIds(metadataDevPath: string, snapshot: boolean): Promise<number[]> {
  const snap = snapshot ? ['--metadata-snap'] : [];
  try {
    return parseThinLsIds(await tool('thin_ls', [...snap, '--no-headers', '-o', 'DEV', metadataDevPath]));
  } catch (lsError) {
    try {
      return parseThinDumpIds(await tool('thin_dump', [...snap, '--skip-mappings', metadataDevPath]));
    } catch {
      throw lsError;
    }
  }
}
