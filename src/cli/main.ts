// The CLI entry point: parses arguments (program.ts), runs one command (run-command.ts, one file a command under commands/), and is the
// only place where errors become exit codes: 0 done, 1 failed, 2 bad input (and, from the
// commands, 130 or 143 when a signal stopped a run). A failure is printed once: its message on
// stderr and, with --json, one JSON object on stdout.

import { CommanderError } from 'commander';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildProgram, type Invocation } from './program.ts';
import { ThinlayerError, UserError } from '../errors/index.ts';
import { CliOutput } from './output.ts';
import { DETAILED } from './detailed-exit.ts';

/** ./state in a checkout, /var/lib/thinlayer when installed; THINLAYER_STATE_DIR overrides both. */
export function defaultStateDir(): string {
  if (process.env.THINLAYER_STATE_DIR) return resolve(process.env.THINLAYER_STATE_DIR);
  // This file runs from src/cli (through tsx) or from dist (the bundle): the package root is one or two levels up.
  const here = dirname(fileURLToPath(import.meta.url));
  const root = [resolve(here, '..'), resolve(here, '../..')].find((dir) => existsSync(join(dir, 'package.json')));
  return root && existsSync(join(root, '.git')) ? join(root, 'state') : '/var/lib/thinlayer';
}

/** commander's parse errors as thinlayer's user errors, worded like the rest. */
function usageError(e: CommanderError, argv: string[]): UserError {
  const text = e.message.replace(/^error: /, '');
  if (e.code === 'commander.unknownCommand') {
    const name = /'([^']*)'/.exec(text)?.[1] ?? argv[0];
    return new UserError(`${text} (see thinlayer --help for the commands)`, { path: name }, 'E_USAGE');
  }
  const option = /option '([^']*)'/.exec(text)?.[1] ?? /'(-[^']*)'/.exec(text)?.[1];
  return new UserError(`${text} (see --help)`, option ? { path: option.split(/[ ,]/).find((w) => w.startsWith('--')) ?? option } : {}, 'E_USAGE');
}

export async function main(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const io = new CliOutput(out, err);
  // Known before parsing, so that a parse error is JSON too: --json, or status's `-o json`.
  let json = argv.includes('--json') || (argv.includes('status') && /(^| )(-o|--output)[ =]?json( |$)/.test(argv.join(' ')));
  const detailed = argv.includes('--detailed-exitcode');
  try {
    let invocation: Invocation | null = null;
    const program = buildProgram({ out: (t) => io.raw(t), err: (t) => io.rawErr(t) }, (inv) => (invocation = inv));
    try {
      await program.parseAsync(argv, { from: 'user' });
    } catch (e) {
      if (!(e instanceof CommanderError)) throw e;
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version') return 0;
      if (e.code === 'commander.help') return 2; // no command given: the help went to stderr
      throw usageError(e, argv);
    }
    const inv = invocation as Invocation | null;
    if (!inv) return 2;
    json = inv.opts.json === true || (inv.command === 'status' && inv.opts.output === 'json');
    const { runCommand } = await import('./run-command.ts');
    return await runCommand(inv, program, io, (inv.opts.stateDir as string | undefined) ?? defaultStateDir());
  } catch (e) {
    const code = io.failure(e, json);
    // --detailed-exitcode keeps 2 for "changes": every failure, bad input included, is 1 (terraform's convention).
    return detailed && code === 2 ? DETAILED.failed : code;
  }
}

export { ThinlayerError };
