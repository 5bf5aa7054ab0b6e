// Issue points on the real kernel: a missing data file, then put back (everything comes back), and a
// mounted device grown online by a raised size (its thin table reloaded, then resize2fs), with df
// inside the device showing the new size.

import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as api from '../../src/api/index.ts';
import { requireKernel, kernelBox } from './kernel-harness.ts';
import { BIN, type CliResult } from './cli-harness.ts';
import { missingDataFileComesBack } from '../scenarios/missing-backing.ts';

beforeAll(requireKernel);

const MiB = 1024 * 1024;

describe('changes and repairs on the real kernel', () => {
  it('a missing data file is reported as missing and put back; then every device and its files come back', () => {
    const b = kernelBox();
    const run = (args: string[]): CliResult => {
      const r = spawnSync(process.execPath, [BIN, ...args, '--state-dir', b.stateDir, '--backend', 'kernel'], { encoding: 'utf8', timeout: 300_000 });
      return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
    };
    missingDataFileComesBack(run, b);
  });

  it('grows a mounted device and its ext4 filesystem online for a raised size', async () => {
    const b = kernelBox();
    const file = join(b.root, 'grow.yaml');
    const manifest = (size: string) => `pool:
  name: kgrow
  data: { file: data.img, size: 2G }
  metadata: { file: metadata.img, size: 64M }
  baseSize: 256M
layers:
  empty: {}
devices:
  app: { layer: empty, size: ${size}, mountpoint: ${b.mnt}/app }
  side: { layer: empty, state: activated, size: ${size} }
`;
    writeFileSync(file, manifest('256M'));
    const opts = { stateDir: b.stateDir, backend: 'kernel' as const };
    await api.apply(file, { ...opts, yes: true });
    const where = join(b.mnt, 'app');
    writeFileSync(join(where, 'kept'), 'written before the grow');
    const fsBytes = () => {
      const s = statfsSync(where);
      return s.blocks * s.bsize;
    };
    const before = fsBytes();
    expect(before).toBeLessThan(256 * MiB);
    const device = (await api.status(opts)).devices.find((d) => d.name === 'app')!;

    writeFileSync(file, manifest('1G'));
    const plan = await api.planFor(file, opts);
    expect(plan.steps.map((s) => `${s.op} ${s.target}`)).toEqual(['thin.resize device:app', 'fs.grow device:app', 'thin.resize device:side', 'fs.grow device:side']);
    await api.apply(file, opts);
    const after = fsBytes();
    expect(after).toBeGreaterThan(768 * MiB);
    expect(readFileSync(join(where, 'kept'), 'utf8')).toBe('written before the grow');
    // The activated device's ext4 was grown too (mounted privately for it, and unmounted).
    const side = (await api.status(opts)).devices.find((d) => d.name === 'side')!;
    expect(side.state).toBe('activated');
    const header = execFileSync('dumpe2fs', ['-h', side.devPath!], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const blocks = Number(/^Block count:\s+(\d+)/m.exec(header)![1]);
    const blockSize = Number(/^Block size:\s+(\d+)/m.exec(header)![1]);
    expect(blocks * blockSize).toBe(1024 * MiB);
    const now = (await api.status(opts)).devices.find((d) => d.name === 'app')!;
    expect(now).toMatchObject({ state: 'mounted', thinId: device.thinId, devPath: device.devPath });
    expect((await api.planFor(file, opts)).steps).toEqual([]);

    // A lowered size is refused, naming the field.
    writeFileSync(file, manifest('512M'));
    await expect(api.apply(file, opts)).rejects.toMatchObject({ exitCode: 2, detail: { path: 'devices.app.size' } });
  });
});
