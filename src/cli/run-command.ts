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
  help: () => import('./commands/help.ts'),
  apply: () => import('./commands/apply.ts'),
  plan: () => import('./commands/plan.ts'),
  status: () => import('./commands/status.ts'),
  events: () => import('./commands/events.ts'),
  diff: () => import('./commands/diff.ts'),
  up: () => import('./commands/up.ts'),
  down: () => import('./commands/down.ts'),
  destroy: () => import('./commands/destroy.ts'),
  doctor: () => import('./commands/doctor.ts'),
  gc: () => import('./commands/gc.ts'),
  watch: () => import('./commands/watch.ts'),
  snapshotter: () => import('./commands/snapshotter.ts'),
  pool: () => import('./commands/pool.ts'),
  sim: () => import('./commands/sim.ts'),
};

export async function runCommand(inv: Invocation, program: Command, io: CliOutput, stateDirOption: string): Promise<number> {
  const load = Object.hasOwn(COMMANDS, inv.command) ? COMMANDS[inv.command] : undefined;
  if (!load) throw new UserError(`unknown command "${inv.command}"`, { path: inv.command }, 'E_USAGE');
  return (await load()).run(contextOf(inv, program, io, stateDirOption));
}
