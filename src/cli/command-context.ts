// What every command is given: what was asked, where it writes, and the options every use case takes.

import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Invocation } from './program.ts';
import type { CliOutput } from './output.ts';
import type { BackendChoice } from '../kernel/select.ts';
import { TerminalReporter } from './render.ts';

export interface CommandContext {
  inv: Invocation;
  /** The command's options and the global ones. */
  o: Record<string, unknown>;
  program: Command;
  io: CliOutput;
  json: boolean;
  stateDir: string;
  backend: BackendChoice;
  reporter: TerminalReporter;
  /** The options every use case takes (src/app/options.ts). */
  common: { stateDir: string; backend: BackendChoice; reporter: TerminalReporter };
}

export function contextOf(inv: Invocation, program: Command, io: CliOutput, stateDirOption: string): CommandContext {
  const o = inv.opts;
  // `-o json` (status) is --json, as kubectl's.
  const json = o.json === true || (inv.command === 'status' && o.output === 'json');
  const backend = (o.backend as BackendChoice | undefined) ?? 'auto';
  const stateDir = resolve(stateDirOption);
  // Which kernel `auto` chose is said once: on the first run of a state dir (no log yet), or with -v.
  const backendNotes = o.verbose === true || !existsSync(join(stateDir, 'events.ndjson'));
  const reporter = new TerminalReporter(io.err, json || o.quiet === true, { onRunStarted: (runId) => (io.runId = runId), backendNotes });
  return { inv, o, program, io, json, stateDir, backend, reporter, common: { stateDir, backend, reporter } };
}

/** A command: parses its options, calls its use case, renders the result; answers the exit code. */
export interface CliCommand {
  run(ctx: CommandContext): Promise<number>;
}
