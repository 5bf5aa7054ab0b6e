// `thinlayer snapshotter -f FILE --socket PATH`: containerd's snapshotter service, until stopped.

import type { CommandContext } from '../command-context.ts';
import { UserError } from '../../errors/index.ts';
import { withSignals } from '../signals.ts';

export async function run({ o, stateDir, backend, reporter }: CommandContext): Promise<number> {
  const socket = o.socket as string | undefined;
  if (!socket)
    throw new UserError('snapshotter needs --socket PATH (containerd dials unix://PATH)', { path: '--socket', expected: 'a socket path' }, 'E_USAGE');
  const file = o.file as string | undefined;
  if (file === undefined || file === '-')
    throw new UserError('snapshotter needs a manifest file naming its pool: -f FILE', { path: '--file', expected: 'a manifest file' }, 'E_USAGE');
  const { runSnapshotter } = await import('../../snapshotter/command.ts');
  await withSignals((signal) => runSnapshotter({ manifest: file, socket, stateDir, backend, reporter, signal }));
  reporter.notify({ code: 'snapshotter.stopped' });
  return 0;
}
