// Shared set-up for the simulated kernel's own tests: a temporary simulator directory with a
// pool on two sparse loop-backed files, removed when the test finishes.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { onTestFinished } from 'vitest';
import type { DmInfo, DmTarget } from '../../src/kernel/kernel-port.ts';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { KernelError, errnoName } from '../../src/errors/index.ts';

export const MiB = 1024 * 1024;

export interface SimPool {
  name: string;
  info: DmInfo;
  dataFile: string;
  metaFile: string;
  table: DmTarget[];
}

export class SimRig {
  readonly root = fs.mkdtempSync(path.join(os.tmpdir(), 'thinlayer-sim-'));
  readonly simDir = path.join(this.root, 'sim');
  readonly workDir = path.join(this.root, 'work');
  readonly mountRoot = path.join(this.root, 'mnt');
  readonly kernel: SimKernel;

  constructor() {
    fs.mkdirSync(this.workDir);
    fs.mkdirSync(this.mountRoot);
    this.kernel = this.instance();
    onTestFinished(() => fs.rmSync(this.root, { recursive: true, force: true }));
  }

  /** Another SimKernel on the same directory, as another process would open it. */
  instance(): SimKernel {
    return new SimKernel({ dir: this.simDir });
  }

  sparseFile(name: string, bytes: number): string {
    const file = path.join(this.workDir, name);
    fs.writeFileSync(file, '');
    fs.truncateSync(file, bytes);
    return file;
  }

  poolTable(dataMinor: number, metaMinor: number, dataBytes: number, features = ''): DmTarget[] {
    return [{ start: 0, length: dataBytes / 512, type: 'thin-pool', params: `7:${metaMinor} 7:${dataMinor} 128 0${features ? ` ${features}` : ''}` }];
  }

  async pool(opts: { dataMiB?: number; metaMiB?: number; features?: string; name?: string; kernel?: SimKernel } = {}): Promise<SimPool> {
    const kernel = opts.kernel ?? this.kernel;
    const name = opts.name ?? 'pool';
    const dataBytes = (opts.dataMiB ?? 64) * MiB;
    const dataFile = this.sparseFile(`${name}-data`, dataBytes);
    const metaFile = this.sparseFile(`${name}-meta`, (opts.metaMiB ?? 16) * MiB);
    const data = await kernel.loopAttach(dataFile);
    const meta = await kernel.loopAttach(metaFile);
    const table = this.poolTable(data.minor, meta.minor, dataBytes, opts.features);
    const info = await kernel.create(name, `uuid-${name}`, table);
    return { name, info, dataFile, metaFile, table };
  }

  async thin(pool: SimPool, id: number, opts: { createId?: boolean; sectors?: number; name?: string; kernel?: SimKernel } = {}): Promise<DmInfo> {
    const kernel = opts.kernel ?? this.kernel;
    if (opts.createId ?? true) await kernel.message(pool.name, `create_thin ${id}`);
    return kernel.create(opts.name ?? `thin${id}`, `uuid-thin${id}-${pool.name}`, [
      { start: 0, length: opts.sectors ?? 204800, type: 'thin', params: `253:${pool.info.minor} ${id}` },
    ]);
  }

  async usedData(pool: SimPool, kernel: SimKernel = this.kernel): Promise<number> {
    const [line] = await kernel.status(pool.name);
    return Number(line.params.split(' ')[2].split('/')[0]);
  }

  async poolWord(pool: SimPool, index: number): Promise<string> {
    const [line] = await this.kernel.status(pool.name);
    return line.params.split(' ')[index];
  }

  mountpoint(name: string): string {
    return path.join(this.mountRoot, name);
  }
}

/** The errno name a promise rejects with ('no error' when it resolves); anything but a KernelError is rethrown. */
export async function errnoOf(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  if (e === null) return 'no error';
  if (!(e instanceof KernelError)) throw e;
  return errnoName(e.errno);
}
