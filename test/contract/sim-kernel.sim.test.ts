// The kernel contract against the simulated kernel, in a fresh simulator directory per test.

import path from 'node:path';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { describeKernelContract, tempFixture } from './kernel-contract.ts';

describeKernelContract('SimKernel', () => tempFixture((root) => new SimKernel({ dir: path.join(root, 'sim') })));
