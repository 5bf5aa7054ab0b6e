// Runs the command an invocation names: each command is a file of its own under commands/. Parsing
// is program.ts's; turning errors into exit codes is main.ts's.
//
// Each command is imported when it runs: `--help` loads nothing more, `plan` does not load watch
// mode (rxjs), doctor or the Linux backend. In the bundle each of these is a chunk of its own
// (scripts/build.mjs), read only when imported.

import type { Command } from 'commander';
import type { Invocation } from './program.ts';
import type { CliOutput } from './output.ts';
import { UserError } from '../errors/index.ts';
import { contextOf, type CliCommand } from './command-context.ts';

const COMMANDS: Record<string, () => Promise<CliCommand>> = {
  help: () => import('./commands/help-command.ts'),
  apply: () => import('./commands/apply-command.ts'),
  plan: () => import('./commands/plan-command.ts'),
  status: () => import('./commands/status-command.ts'),
  events: () => import('./commands/events-command.ts'),
  diff: () => import('./commands/diff-command.ts'),
  commit: () => import('./commands/commit-command.ts'),
  export: () => import('./commands/export-command.ts'),
  up: () => import('./commands/up-command.ts'),
  down: () => import('./commands/down-command.ts'),
  destroy: () => import('./commands/destroy-command.ts'),
  doctor: () => import('./commands/doctor-command.ts'),
  gc: () => import('./commands/gc-command.ts'),
  watch: () => import('./commands/watch-command.ts'),
  snapshotter: () => import('./commands/snapshotter-command.ts'),
  pool: () => import('./commands/pool-command.ts'),
  sim: () => import('./commands/sim-command.ts'),
};

export async function runCommand(inv: Invocation, program: Command, io: CliOutput, stateDirOption: string): Promise<number> {
  const load = Object.hasOwn(COMMANDS, inv.command) ? COMMANDS[inv.command] : undefined;
  if (!load) throw new UserError(`unknown command "${inv.command}"`, { path: inv.command }, 'E_USAGE');
  return (await load()).run(contextOf(inv, program, io, stateDirOption));
}
