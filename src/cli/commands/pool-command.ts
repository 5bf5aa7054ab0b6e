// `thinlayer pool grow --data SIZE [--metadata SIZE]`: grow a file-backed pool.

import type { CommandContext } from '../command-context.ts';
import { UserError } from '../../errors/index.ts';
import { parseSize as parseManifestSize } from '../../manifest/sizes.ts';
import { printNothingRecorded } from '../run-summary.ts';
import { withSignals } from '../signals.ts';
import { formatBytes, listOf } from '../../messages/format.ts';

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
  if (json) {
    io.print(JSON.stringify({ outcome: 'done', ...result }));
    return 0;
  }
  if (!result.reloaded) {
    const grown = (['data', 'metadata'] as const).flatMap((role) => {
      const bytes = role === 'data' ? request.dataBytes : request.metadataBytes;
      return bytes === undefined ? [] : [`the ${role} file is ${formatBytes(bytes)}`];
    });
    io.print(`pool grow: done; ${listOf(grown)}: the pool takes the new size when it is next activated.`);
    return 0;
  }
  // Both sizes as the kernel now reports them, whichever was grown: what the pool has, confirmed.
  const { status } = await import('../../app/status.ts');
  const pool = (await status(common)).pool;
  const capacity = (what: string, use: { totalBytes: number; usedBytes: number; percent: number } | null | undefined) =>
    use ? `${formatBytes(use.totalBytes)} of ${what} (${formatBytes(use.usedBytes)} used, ${use.percent}%)` : `its ${what} size unknown`;
  io.print(`pool grow: done; the pool now has ${capacity('data', pool?.data)} and ${capacity('metadata', pool?.metadata)}.`);
  return 0;
}
