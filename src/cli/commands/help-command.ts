// `thinlayer help [COMMAND]`: the program's help, or one command's.

import { UserError } from '../../errors/index.ts';
import { findCommand } from '../program.ts';
import type { CommandContext } from '../command-context.ts';

export async function run({ inv, program, io }: CommandContext): Promise<number> {
  if (inv.args.length === 0) {
    io.raw(program.helpInformation());
    return 0;
  }
  const found = findCommand(program, inv.args);
  if (!found || found.name() === 'help') {
    const names = program.commands.map((c) => c.name()).filter((n) => n !== 'help');
    throw new UserError(`no command "${inv.args.join(' ')}" (commands: ${names.join(', ')})`, { path: inv.args.join(' ') }, 'E_USAGE');
  }
  io.raw(found.helpInformation());
  return 0;
}
