// `-f FILE` for the commands given a manifest to apply or plan: a file, or `-` for standard input.

import { UserError } from '../errors/index.ts';
import type { ManifestSource } from '../manifest/load.ts';
import type { CommandContext } from './command-context.ts';

export async function manifestArg({ inv, o }: CommandContext): Promise<string | ManifestSource> {
  const file = o.file as string | undefined;
  if (file === undefined)
    throw new UserError(`${inv.command} needs a manifest: -f FILE (or -f - for standard input)`, { path: '--file', expected: 'a manifest file' }, 'E_USAGE');
  if (file !== '-') return file;
  const { readManifestStdin } = await import('../manifest/load.ts');
  return readManifestStdin(process.stdin);
}
