// `thinlayer help [COMMAND]`: the program's help, or one command's.

import { UserError } from '../../errors/index.ts';
import { findCommand } from '../program.ts';
import type { CommandContext } from '../command-context.ts';

export async function run({ inv, program }: CommandContext): Promise<number> {
  if (inv.args.length === 0) {
    program.outputHelp();
    return 0;
  }
  const found = findCommand(program, inv.args);
  if (!found) {
    const names = program.commands.map((c) => c.name()).filter((n) => n !== 'help');
    throw new UserError(`no command "${inv.args.join(' ')}" (commands: ${names.join(', ')})`, { path: inv.args.join(' ') }, 'E_USAGE');
  }
  // outputHelp, not helpInformation: the text after the options (what it does, exit codes, an
  // example) is added on commander's afterHelp event, so that `help X` prints all of `X --help`.
  found.outputHelp();
  return 0;
}
