// Run in a child process by sim-persistence.sim.test.ts, which kills it with SIGKILL mid-run:
// creates thin ids one after another and prints each id once its message has returned.

import { SimKernel } from '../../src/kernel/sim/index.ts';

const [dir, poolName] = process.argv.slice(2);
const kernel = new SimKernel({ dir });
for (let id = 100; id < 100_000; id++) {
  await kernel.message(poolName, `create_thin ${id}`);
  await kernel.create(`killed-${id}`, '', [{ start: 0, length: 2048, type: 'zero', params: '' }]);
  process.stdout.write(`${id}\n`);
}
