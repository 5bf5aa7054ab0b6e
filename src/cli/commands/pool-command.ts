// `thinlayer pool grow --data SIZE [--metadata SIZE]`: grow a file-backed pool.

import type { CommandContext } from '../command-context.ts';
import { UserError } from '../../errors/index.ts';
import { parseSize as parseManifestSize } from '../../manifest/sizes.ts';
import { printNothingRecorded } from '../run-summary.ts';
import { withSignals } from '../signals.ts';

function parseSize(text: string, flag: string): number {
  try {
    return parseManifestSize(text);
  } catch (e) {
    throw new UserError(`${flag}: ${(e as Error).message}`, { path: flag, expected: 'a size such as 200G' }, 'E_USAGE');
  }
}

export async function run({ io, json, o, common }: CommandContext): Promise<number> {
  const size = (value: unknown, flag: string) => (value === undefined ? undefined : parseSize(value as string, flag));
  const request = { dataBytes: size(o.data, '--data'), metadataBytes: size(o.metadata, '--metadata') };
  if (request.dataBytes === undefined && request.metadataBytes === undefined)
    throw new UserError('pool grow needs a new size: --data SIZE and/or --metadata SIZE', { path: '--data', expected: 'a size such as 200G' }, 'E_USAGE');
  const { growPoolTo } = await import('../../app/pool-grow.ts');
  // One step: a signal waits for it (the files, the loop devices and the table grow together).
  const { result } = await withSignals((signal) => growPoolTo(request, { ...common, signal }));
  if (!result) {
    printNothingRecorded(io, json, 'pool grow');
    return 0;
  }
  if (json) io.print(JSON.stringify({ outcome: 'done', ...result }));
  else
    io.print(
      `pool grow: done; ${result.reloaded ? `the pool now has ${result.dataBlocks} data blocks` : 'the pool takes the new size when it is next activated'}.`,
    );
  return 0;
}
