// The kernel contract against the real kernel (LinuxKernel), inside the test VM: npm run test:kernel.

import { beforeAll, expect } from 'vitest';
import { LinuxKernel, linuxKernelAvailable } from '../../src/kernel/linux/index.ts';
import { describeKernelContract, tempFixture } from './kernel-contract.ts';

beforeAll(() => {
  // Only the VM has device-mapper: fail loudly rather than skip anywhere else.
  expect(linuxKernelAvailable(), 'needs /dev/mapper/control and root: run it with npm run test:kernel').toBe(true);
});

describeKernelContract('LinuxKernel', () => tempFixture(() => new LinuxKernel()));
