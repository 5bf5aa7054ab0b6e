// The kernel contract against the simulated kernel, in a fresh simulator directory per test.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { describeKernelContract } from './kernel-contract.ts';

describeKernelContract('SimKernel', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'thinlayer-contract-'));
  const workDir = path.join(root, 'work');
  const mountRoot = path.join(root, 'mnt');
  fs.mkdirSync(workDir);
  fs.mkdirSync(mountRoot);
  const kernel = new SimKernel({ dir: path.join(root, 'sim') });
  return {
    kernel,
    workDir,
    mountRoot,
    async cleanup() {
      await kernel.close();
      fs.rmSync(root, { recursive: true, force: true });
    },
  };
});
