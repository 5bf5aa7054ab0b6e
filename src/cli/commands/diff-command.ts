// `thinlayer diff DEVICE [-o FILE]`: what changed in a device against its layer (src/app/diff.ts).

import { resolve } from 'node:path';
import type { CommandContext } from '../command-context.ts';
import { UserError } from '../../errors/index.ts';
import { plural } from '../../messages/format.ts';

export async function run({ io, json, o, inv, common }: CommandContext): Promise<number> {
  const device = inv.args[0];
  if (!device)
    throw new UserError('diff needs a device: thinlayer diff DEVICE', { path: 'DEVICE', expected: 'the name of a device in the manifest' }, 'E_USAGE');
  const output = typeof o.output === 'string' ? resolve(o.output) : undefined;
  const { diffDevice } = await import('../../app/diff.ts');
  const result = await diffDevice({ session: { stateDir: common.stateDir, backend: common.backend }, reporter: common.reporter, device, output });
  if (json) {
    io.print(JSON.stringify(result));
    return 0;
  }
  for (const c of result.changes) io.print(`${c.kind} ${c.path}`);
  if (result.tar)
    io.note(`diff: ${plural(result.changes.length, 'change')} of ${device} against layer ${result.layer} written to ${result.tar.path} (${result.tar.diffId})`);
  return 0;
}
