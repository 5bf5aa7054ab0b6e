// `thinlayer commit DEVICE LAYER [-o FILE]`: a device's current state as a layer (src/app/commit.ts).

import { resolve } from 'node:path';
import type { CommandContext } from '../command-context.ts';
import { UserError } from '../../errors/index.ts';

export async function run({ io, json, o, inv, common }: CommandContext): Promise<number> {
  const [device, layer] = inv.args;
  if (!device || !layer)
    throw new UserError('commit needs a device and a layer name: thinlayer commit DEVICE LAYER', { path: device ? 'LAYER' : 'DEVICE' }, 'E_USAGE');
  const output = typeof o.output === 'string' ? resolve(o.output) : undefined;
  const { commitDevice } = await import('../../app/commit.ts');
  const result = await commitDevice({ session: { stateDir: common.stateDir, backend: common.backend }, reporter: common.reporter, device, layer, output });
  if (json) {
    io.print(JSON.stringify(result));
    return 0;
  }
  const what = result.created ? `layer ${layer} is thin id ${result.thinId}` : `a layer of that content was there already (thin id ${result.thinId})`;
  io.note(
    `commit: ${result.changes} change(s) of ${device} against ${result.parent ? `layer ${result.parent}` : 'the base'}; ${what}; diff id ${result.diffId}`,
  );
  io.note('Declare it in the manifest:');
  io.print(result.manifest);
  return 0;
}
