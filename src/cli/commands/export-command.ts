// `thinlayer export LAYER|DEVICE --oci DIR`: a chain of layers as an OCI image layout (src/app/export.ts).

import { resolve } from 'node:path';
import type { CommandContext } from '../command-context.ts';
import { plural } from '../../messages/format.ts';
import { UserError } from '../../errors/index.ts';

export async function run({ io, json, o, inv, common }: CommandContext): Promise<number> {
  const name = inv.args[0];
  const compress = o.compress ?? 'gzip';
  if (compress !== 'gzip' && compress !== 'none')
    throw new UserError(
      `--compress ${String(compress)}: thinlayer compresses layers with gzip or not at all`,
      { path: '--compress', expected: 'gzip or none' },
      'E_USAGE',
    );
  const { exportImage } = await import('../../app/export.ts');
  const result = await exportImage({
    session: { stateDir: common.stateDir, backend: common.backend },
    reporter: common.reporter,
    name,
    dir: resolve(String(o.oci)),
    ...(typeof o.tag === 'string' ? { tag: o.tag } : {}),
    compress,
  });
  if (json) {
    io.print(JSON.stringify(result));
    return 0;
  }
  io.note(`export: ${result.kind} ${name} as ${plural(result.layers.length, 'layer')} in ${result.dir}, tag ${result.tag}, manifest ${result.manifestDigest}`);
  return 0;
}
