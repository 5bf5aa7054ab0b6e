// Point of view of a user whose data file went missing, on the simulated kernel (test/scenarios/missing-backing.ts).

import { describe, it, onTestFinished } from 'vitest';
import { sandbox } from './cli-harness.ts';
import { missingDataFileComesBack } from '../scenarios/missing-backing.ts';
import { simMounted } from '../sim-mounts.ts';

describe('a missing data file on the simulated kernel', () => {
  it('is reported as missing with its path and the repair is to put it back; once back, everything comes back', () => {
    const box = sandbox();
    onTestFinished(() => box.cleanup());
    missingDataFileComesBack(box.run, { ...box, filesOf: (mountpoint) => simMounted(box.stateDir, mountpoint) });
  });
});
