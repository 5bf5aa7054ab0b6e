// The kernel contract against the real kernel (LinuxKernel), inside the test VM: npm run test:kernel.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { beforeAll, expect } from 'vitest';
import { LinuxKernel, linuxKernelAvailable } from '../../src/kernel/linux/index.ts';
import { describeKernelContract } from './kernel-contract.ts';

beforeAll(() => {
  // Only the VM has device-mapper: fail loudly rather than skip anywhere else.
  expect(linuxKernelAvailable(), 'needs /dev/mapper/control and root: run it with npm run test:kernel').toBe(true);
});

describeKernelContract('LinuxKernel', async () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'thinlayer-contract-'));
  const workDir = path.join(root, 'work');
  const mountRoot = path.join(root, 'mnt');
  fs.mkdirSync(workDir);
  fs.mkdirSync(mountRoot);
  const kernel = new LinuxKernel();
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
