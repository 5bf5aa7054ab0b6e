// The snapshotter's soak on the simulated kernel, in `npm test`: 60 s (THINLAYER_SOAK_SECONDS) of
// containerd's calls, reads and SIGKILLs; see soak.ts for what it checks.

import { describe, it } from 'vitest';
import { runSoak } from './soak.ts';

const seconds = Number(process.env.THINLAYER_SOAK_SECONDS ?? 60);

describe('snapshotter soak (simulated kernel)', () => {
  it(`loses and leaks nothing over ${seconds} s of mixed calls, reads and SIGKILLs`, { timeout: (seconds + 120) * 1000 }, async () => {
    await runSoak({ backend: 'sim', seconds, epochMs: 10_000, workers: 6 });
  });
});
