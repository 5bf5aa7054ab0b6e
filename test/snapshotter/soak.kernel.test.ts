// The snapshotter's soak, shortened, on the real kernel (inside the test VM): 30 s of containerd's
// calls with real mounts, doctor and status beside them and a SIGKILL every 10 s; see soak.ts.

import { describe, it } from 'vitest';
import { requireKernel } from '../e2e/kernel-harness.ts';
import { runSoak } from './soak.ts';

describe('snapshotter soak (real kernel)', () => {
  it('loses and leaks nothing over 30 s of mixed calls, reads and SIGKILLs', { timeout: 900_000 }, async () => {
    requireKernel();
    await runSoak({ backend: 'kernel', seconds: 30, epochMs: 10_000, workers: 3 });
  });
});
