// Space on the simulated kernel: pool blocks allocated per byte written into mounted devices, and
// what is left allocated once those devices are deleted. The simulator keeps no data in the
// pool's backing file, so its measure is the pool's own count of used data blocks (status). The
// kernel suite measures the same on the real kernel with the data file's allocated blocks.

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { apply } from '../../src/api/index.ts';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { parsePoolStatus } from '../../src/kernel/thin-pool.ts';
import { dmIdentity } from '../../src/domain/names.ts';
import { deviceName, manifestYaml, type BenchManifestSpec } from '../fixtures/manifest.ts';
import { round } from '../stats.ts';
import type { Suite, SuiteContext, SuiteOutput } from '../suite.ts';

const POOL = 'benchspace';
const BLOCK = 64 * 1024;
const MiB = 2 ** 20;

export const spaceSuite: Suite = {
  name: 'space',
  title: 'Space on the simulated kernel: allocated per byte written, and after deleting',
  async run(ctx: SuiteContext): Promise<SuiteOutput> {
    const devices = ctx.quick ? 2 : 10;
    const fileBytes = (ctx.quick ? 1 : 8) * MiB;
    const smallFiles = ctx.quick ? 64 : 512;
    const stateDir = path.join(ctx.scratch, 'state');
    const mnt = path.join(ctx.scratch, 'mnt');
    const spec = (n: number): BenchManifestSpec => ({
      pool: POOL,
      dataSize: '8G',
      metadataSize: '256M',
      baseSize: '512M',
      chain: ['os'],
      devices: Array.from({ length: n }, (_, i) => ({
        name: deviceName('s', i, 3),
        layer: 'os',
        state: 'mounted' as const,
        mountpoint: path.join(mnt, deviceName('s', i, 3)),
      })),
    });
    const full = path.join(ctx.scratch, 'full.yaml');
    const none = path.join(ctx.scratch, 'none.yaml');
    fs.writeFileSync(full, manifestYaml(spec(devices)));
    fs.writeFileSync(none, manifestYaml(spec(0)));
    const common = { stateDir, backend: 'sim' as const, yes: true };
    await apply(full, common);

    const kernel = new SimKernel({ dir: path.join(stateDir, 'sim') });
    const usedBytes = async () => {
      const line = (await kernel.status(dmIdentity(POOL, 'pool').dmName)).find((l) => l.type === 'thin-pool');
      if (!line) throw new Error('the pool has no thin-pool status');
      return parsePoolStatus(line.params).dataUsed * BLOCK;
    };
    const out: SuiteOutput = { metrics: {}, tables: [], targets: [], notes: [] };
    try {
      const start = await usedBytes();
      // One large file per device, then many 4 KiB files per device: whole blocks, then blocks shared by small files.
      const rows: (string | number)[][] = [];
      const write = async (label: string, each: (dir: string) => number) => {
        const before = await usedBytes();
        let written = 0;
        for (let i = 0; i < devices; i++) written += each(kernel.mountedAt(path.join(mnt, deviceName('s', i, 3))));
        await kernel.sync();
        const allocated = (await usedBytes()) - before;
        rows.push([label, written, allocated, round(allocated / written)]);
        return { written, allocated };
      };
      const big = await write(`one ${fileBytes / MiB} MiB file per device`, (dir) => {
        fs.writeFileSync(path.join(dir, 'big.bin'), crypto.randomBytes(fileBytes));
        return fileBytes;
      });
      const small = await write(`${smallFiles} files of 4 KiB per device`, (dir) => {
        fs.mkdirSync(path.join(dir, 'small'));
        for (let f = 0; f < smallFiles; f++) fs.writeFileSync(path.join(dir, 'small', `${f}.bin`), crypto.randomBytes(4096));
        return smallFiles * 4096;
      });
      const written = big.written + small.written;
      const allocated = big.allocated + small.allocated;
      const beforeDelete = await usedBytes();
      await apply(none, common);
      const afterDelete = await usedBytes();
      out.tables.push({
        title: `Pool data allocated per byte written (${devices} mounted devices, ${BLOCK / 1024} KiB pool blocks)`,
        columns: ['written', 'bytes written', 'bytes allocated', 'allocated per byte written'],
        rows: [...rows, ['total', written, allocated, round(allocated / written)]],
        note: "Allocated: the growth of the pool's used data blocks (status) times the block size, after the simulator wrote the files back (sync).",
      });
      out.tables.push({
        title: 'After deleting the devices',
        columns: ['moment', 'pool data used (bytes)'],
        rows: [
          ['devices made, nothing written (base filesystem and layer)', start],
          ['after the writes', beforeDelete],
          ['devices deleted by apply (discard, then delete)', afterDelete],
        ],
      });
      const residual = afterDelete - start;
      out.metrics.allocated_per_byte_written = { value: round(allocated / written), unit: 'bytes/byte' };
      out.metrics.residual_after_delete_bytes = { value: residual, unit: 'bytes' };
      out.notes.push(
        residual > 0
          ? `After deleting the devices the pool holds ${residual} bytes more than before the writes (${round(residual / written)} of what was written).`
          : `Deleting the devices returned every block written into them (the pool holds ${-residual} bytes fewer than before the writes).`,
        "The simulator allocates a file's 4 KiB blocks first-fit, so small files pack into shared pool blocks; on the real kernel the filesystem's own allocator decides (see the kernel suite).",
      );
    } finally {
      await kernel.close();
    }
    return out;
  },
};
