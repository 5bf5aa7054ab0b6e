// The command line's grammar, declared once with commander: every command, its options and its
// help. Parsing only: each command's action records what was asked (an Invocation), and main.ts
// runs it. Commander's own errors (unknown option, missing value, extra argument) become user
// errors (exit 2) in main.ts, so there is one place that prints a failure.

import { Command, Option } from 'commander';
import { UserError } from '../errors/index.ts';
import { HELP_AFTER, HELP_HELP, COMMAND_HELP, COMMAND_SUMMARY, exitCodesHelp } from './help.ts';
import packageJson from '../../package.json' with { type: 'json' };

export const VERSION: string = packageJson.version;

/** What the user asked for: a command (`pool grow` is `pool` with sub `grow`) and its options. */
export interface Invocation {
  command: string;
  sub?: string;
  /** The command's options and the global ones, by commander's camel-cased names. */
  opts: Record<string, unknown>;
  /** Positional arguments (`help TOPIC`). */
  args: string[];
}

/**
 * `-f FILE`: a file name, `-` for standard input. An empty value is refused here; a value that is
 * an option (`-f --state-dir X`) is refused by commander as a missing value.
 */
function manifestFile(value: string): string {
  if (value === '')
    throw new UserError(
      '-f needs a manifest file, not an empty string (use -f - to read standard input)',
      { path: '--file', expected: 'a manifest file' },
      'E_USAGE',
    );
  return value;
}

/** Each command's usage line, as its help and the command list show it. */
const USAGE: Record<string, string> = {
  apply: '-f FILE [--yes]',
  plan: '[-f FILE] [--detailed-exitcode]',
  status: '[NAME...] [-o wide|json|custom-columns=…] [--detailed-exitcode]',
  events: '[--follow] [--since SEQ|TIME]',
  diff: 'DEVICE [-o FILE]',
  commit: 'DEVICE LAYER [-o FILE]',
  export: 'LAYER|DEVICE --oci DIR [--tag NAME:TAG] [--compress gzip|none]',
  down: '[--force]',
  destroy: '[--yes] [--force]',
  gc: '[--yes] [--thin-id N] [--keep-foreign]',
  watch: '-f FILE [options]',
  pool: 'grow --data SIZE [--metadata SIZE]',
  grow: '--data SIZE [--metadata SIZE]',
  snapshotter: '-f FILE --socket PATH',
  sim: 'reboot',
  help: '[COMMAND]',
};

interface ProgramOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** The program; `onInvoke` receives what was asked when parsing succeeds. */
export function buildProgram(io: ProgramOutput, onInvoke: (inv: Invocation) => void): Command {
  const program = new Command('thinlayer');
  program
    .description(COMMAND_SUMMARY.program)
    .usage('<command> [options]')
    .exitOverride()
    .configureOutput({ writeOut: io.out, writeErr: io.err, outputError: () => undefined })
    .helpCommand(false)
    .version(VERSION, '--version', 'print the version and exit')
    .helpOption('-h, --help', 'help; `thinlayer help COMMAND` for one command')
    .option(
      '--state-dir <dir>',
      'where the event log, snapshot, lock and pool files live (default: ./state in a checkout, /var/lib/thinlayer otherwise, or $THINLAYER_STATE_DIR)',
    )
    .addOption(
      new Option(
        '--backend <backend>',
        'the real kernel, the simulated one, or auto: the real one wherever device-mapper is (refused when not root), the simulated one elsewhere',
      )
        .choices(['auto', 'kernel', 'sim'])
        .default('auto'),
    )
    .option('--json', 'machine-readable output on stdout (a failure is one JSON object too)')
    .option('-q, --quiet', 'no progress lines')
    .option('-v, --verbose', "also say which kernel --backend auto chose (said anyway on a state dir's first run)")
    .addHelpText('after', HELP_AFTER)
    // The command list shows each command's usage (`apply -f FILE [--yes]`), not `apply [options]`.
    // Each command's help lists the global options too: all of them apply to every command.
    .configureHelp({ showGlobalOptions: true, subcommandTerm: (c) => `${c.name()}${USAGE[c.name()] ? ` ${USAGE[c.name()]}` : ''}` });

  /** `key`: the command as its help and EXIT_CODES name it (`pool grow`). */
  const command = (parent: Command, name: string, help: string, key = name) => {
    const c = parent
      .command(name)
      .helpCommand(false)
      .description(COMMAND_SUMMARY[name] ?? '')
      .addHelpText('after', `\n${help}\n\n${exitCodesHelp(key)}`);
    if (USAGE[name] !== undefined) c.usage(USAGE[name]);
    return c;
  };
  const invoke = (name: string, sub?: string) =>
    function (this: Command, ...params: unknown[]) {
      const args = params
        .slice(0, -2)
        .flat()
        .filter((p): p is string => typeof p === 'string');
      onInvoke({ command: name, sub, opts: this.optsWithGlobals(), args });
    };
  const file = () => new Option('-f, --file <file>', 'the manifest (- reads standard input)').argParser(manifestFile);
  // watch follows the file as it changes, and the snapshotter reads it at start and on SIGHUP: a file, never standard input.
  const fileOnly = (what: string) => new Option('-f, --file <file>', `the manifest ${what} (a file: standard input is refused)`).argParser(manifestFile);
  const yes = () => new Option('-y, --yes', 'confirm steps that delete data without asking');
  const detailed = () => new Option('--detailed-exitcode', 'exit 0 when converged, 2 when there are changes or drift, 1 on error');

  command(program, 'apply', COMMAND_HELP.apply).addOption(file()).addOption(yes()).action(invoke('apply'));
  command(program, 'plan', COMMAND_HELP.plan).addOption(file()).addOption(detailed()).action(invoke('plan'));
  command(program, 'status', COMMAND_HELP.status)
    .argument('[name...]', 'only these devices, layers or the pool, by their manifest names')
    .addOption(detailed())
    .option('-o, --output <format>', 'wide (every column), json (as --json), or custom-columns=COLUMN,… (the device columns: see below)')
    .option('--columns <list>', 'the device columns to print, e.g. name,state,dev (as -o custom-columns=)')
    .action(invoke('status'));
  command(program, 'events', COMMAND_HELP.events)
    .option('--follow', 'keep printing new events until interrupted')
    .option('--since <seq|time>', 'only events after this sequence number, or at or after this time (ISO 8601)')
    .action(invoke('events'));
  command(program, 'diff', COMMAND_HELP.diff)
    .argument('<device>', 'the device, by its manifest name')
    .option('-o, --output <file>', 'also write the changes as an OCI layer tar to FILE (replaced whole)')
    .action(invoke('diff'));
  command(program, 'commit', COMMAND_HELP.commit)
    .argument('<device>', 'the device, by its manifest name')
    .argument('<layer>', "the new layer's name, as a manifest will declare it")
    .option('-o, --output <file>', 'also write the layer tar to FILE (replaced whole)')
    .action(invoke('commit'));
  command(program, 'export', COMMAND_HELP.export)
    .argument('<name>', 'a layer or a device, by its manifest name')
    .requiredOption('--oci <dir>', 'the OCI image layout to write (an empty directory, or a layout to add the image to)')
    .option('--tag <name:tag>', 'the image name and tag (default thinlayer/NAME:latest)')
    .option('--compress <how>', 'gzip (default) or none')
    .action(invoke('export'));
  command(program, 'up', COMMAND_HELP.up).action(invoke('up'));
  const force = () => new Option('--force', 'ask a running snapshotter or watch on this state dir to stop, and wait until it has, instead of refusing');
  command(program, 'down', COMMAND_HELP.down).addOption(force()).action(invoke('down'));
  command(program, 'destroy', COMMAND_HELP.destroy).addOption(yes()).addOption(force()).action(invoke('destroy'));
  command(program, 'doctor', COMMAND_HELP.doctor).action(invoke('doctor'));
  command(program, 'gc', COMMAND_HELP.gc)
    .addOption(yes())
    .option('--thin-id <n>', 'delete this one thin id, which this log did not create, after saying how much data it maps')
    .option('--keep-foreign', 'record what the pool holds beyond this log as foreign, so the log is no longer behind it')
    .action(invoke('gc'));
  command(program, 'watch', COMMAND_HELP.watch)
    .addOption(fileOnly('to follow as it changes'))
    .option('--interval <duration>', 'drift check interval (30s, 2m, 1h, 500ms)')
    .option('--metrics-port <port>', 'serve Prometheus metrics on 127.0.0.1:PORT (0: any free port)')
    .action(invoke('watch'));
  command(program, 'snapshotter', COMMAND_HELP.snapshotter)
    .addOption(fileOnly('naming the pool to serve'))
    .option('--socket <path>', 'the unix socket to serve on (containerd dials unix://PATH)')
    .action(invoke('snapshotter'));
  const pool = command(program, 'pool', COMMAND_HELP.pool, 'pool grow');
  command(pool, 'grow', COMMAND_HELP.pool, 'pool grow')
    .option('--data <size>', "the data file's new size, e.g. 200G")
    .option('--metadata <size>', "the metadata file's new size, e.g. 2G")
    .action(invoke('pool', 'grow'));
  const sim = command(program, 'sim', COMMAND_HELP.sim, 'sim reboot');
  command(sim, 'reboot', COMMAND_HELP.sim, 'sim reboot').action(invoke('sim', 'reboot'));
  program
    .command('help')
    .helpCommand(false)
    .description('help for thinlayer or one command')
    .addHelpText('after', `\n${HELP_HELP}\n\n${exitCodesHelp('help')}`)
    .argument('[command...]', 'the command to explain, e.g. apply or pool grow')
    .action(invoke('help'));
  return program;
}

/** The command (or `pool grow`) that help TOPIC names, or null when there is none. */
export function findCommand(program: Command, topic: string[]): Command | null {
  let current: Command = program;
  for (const name of topic) {
    const next = current.commands.find((c) => c.name() === name);
    if (!next) return null;
    current = next;
  }
  return current;
}
