// The CLI entry point: parses arguments, runs one command through the library API, renders the
// result, and is the only place where errors become exit codes: 0 done, 1 failed, 2 bad input, and
// 130 or 143 when SIGINT or SIGTERM interrupted a run between steps (128 + the signal's number).

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, type FlagSpec } from './args.ts';
import { renderPlan, renderStatus, renderEvent, renderInterrupted, TerminalReporter } from './render.ts';
import { HELP, COMMAND_HELP } from './help.ts';
import { SIGNAL_EXIT, type StopSignal } from './exit-codes.ts';
import { ThinlayerError, UserError } from '../errors/index.ts';
import type { BackendChoice } from '../kernel/select.ts';
import type { Plan } from '../plan/steps.ts';
import type { Reporter } from '../messages/port.ts';
import { parseSize as parseManifestSize } from '../manifest/sizes.ts';

// Everything a command needs beyond parsing its arguments is imported when that command runs:
// `--help` loads nothing more, `plan` does not load watch mode (rxjs), doctor or the Linux backend.
// In the bundle each of these is a chunk of its own (scripts/build.mjs), read only when imported.
const loadApi = () => import('../api/index.ts');

const GLOBAL: FlagSpec[] = [
  { name: 'state-dir', takesValue: true },
  { name: 'backend', takesValue: true },
  { name: 'json', takesValue: false },
  { name: 'help', short: 'h', takesValue: false },
  { name: 'quiet', short: 'q', takesValue: false },
];
const PER_COMMAND: Record<string, FlagSpec[]> = {
  apply: [{ name: 'file', short: 'f', takesValue: true }, { name: 'yes', short: 'y', takesValue: false }],
  plan: [{ name: 'file', short: 'f', takesValue: true }],
  status: [],
  events: [{ name: 'follow', takesValue: false }, { name: 'since', takesValue: true }],
  up: [],
  down: [],
  destroy: [{ name: 'yes', short: 'y', takesValue: false }],
  sim: [],
  pool: [{ name: 'data', takesValue: true }, { name: 'metadata', takesValue: true }],
  doctor: [],
  gc: [{ name: 'yes', short: 'y', takesValue: false }, { name: 'thin-id', takesValue: true }, { name: 'keep-foreign', takesValue: false }],
  watch: [{ name: 'file', short: 'f', takesValue: true }, { name: 'interval', takesValue: true }, { name: 'metrics-port', takesValue: true }],
};

/** ./state in a checkout, /var/lib/thinlayer when installed; THINLAYER_STATE_DIR overrides both. */
export function defaultStateDir(): string {
  if (process.env.THINLAYER_STATE_DIR) return resolve(process.env.THINLAYER_STATE_DIR);
  // This file runs from src/cli (through tsx) or from dist (the bundle): the package root is one or two levels up.
  const here = dirname(fileURLToPath(import.meta.url));
  const root = [resolve(here, '..'), resolve(here, '../..')].find((dir) => existsSync(join(dir, 'package.json')));
  return root && existsSync(join(root, '.git')) ? join(root, 'state') : '/var/lib/thinlayer';
}

export async function main(argv: string[], out: NodeJS.WritableStream = process.stdout, err: NodeJS.WritableStream = process.stderr): Promise<number> {
  const print = (text: string) => out.write(text.endsWith('\n') ? text : text + '\n');
  let json = argv.includes('--json');
  try {
    // Parse once with every flag any command knows, so flag values are never mistaken for the command;
    // then check that each flag given belongs to the command.
    const allFlags = [...GLOBAL, ...Object.values(PER_COMMAND).flat()].filter((f, i, a) => a.findIndex((g) => g.name === f.name) === i);
    const args = parseArgs(argv, allFlags);
    const command = args.positionals.shift();
    if (!command || command === 'help') {
      const topic = command === 'help' ? args.positionals[0] : undefined;
      print(topic && COMMAND_HELP[topic] ? COMMAND_HELP[topic] : HELP);
      return command || args.flags.help ? 0 : 2;
    }
    if (!(command in PER_COMMAND)) throw new UserError(`unknown command "${command}" (commands: ${Object.keys(PER_COMMAND).join(', ')}; see --help)`, { path: command }, 'E_USAGE');
    const allowed = new Set([...GLOBAL, ...PER_COMMAND[command]].map((f) => f.name));
    for (const flag of Object.keys(args.flags)) {
      if (!allowed.has(flag)) throw new UserError(`${command} does not take --${flag} (see thinlayer help ${command})`, { path: `--${flag}` }, 'E_USAGE');
    }
    if (args.flags.help) {
      print(COMMAND_HELP[command] ?? HELP);
      return 0;
    }
    json = args.flags.json === true;
    const backend = (args.flags.backend as string | undefined) ?? 'auto';
    if (!['auto', 'kernel', 'sim'].includes(backend)) throw new UserError(`--backend must be auto, kernel or sim, not "${backend}"`, { path: '--backend', expected: 'auto|kernel|sim' }, 'E_USAGE');
    const stateDir = resolve((args.flags['state-dir'] as string | undefined) ?? defaultStateDir());
    const reporter: Reporter = new TerminalReporter(err, json || args.flags.quiet === true);
    const common = { stateDir, backend: backend as BackendChoice, reporter };
    const interactive = process.stdin.isTTY === true && !json;
    const confirm = async (plan: Plan) => {
      if (!interactive) {
        err.write(renderPlan(plan) + '\n');
        return false;
      }
      err.write(renderPlan(plan) + '\n');
      const { createInterface } = await import('node:readline/promises');
      const rl = createInterface({ input: process.stdin, output: process.stderr });
      try {
        const answer = await rl.question(`This deletes ${plan.steps.filter((s) => s.impact === 'destroy').length} thin device(s) and their data. Go ahead? [y/N] `);
        return /^y(es)?$/i.test(answer.trim());
      } finally {
        rl.close();
      }
    };
    const rest = args.positionals;
    const needFile = () => {
      const file = args.flags.file as string | undefined;
      if (!file) throw new UserError(`${command} needs a manifest: -f FILE`, { path: '--file', expected: 'a manifest file' }, 'E_USAGE');
      return file;
    };

    switch (command) {
      case 'apply': {
        const api = await loadApi();
        const { result, signal } = await withSignals((signal) => api.apply(needFile(), { ...common, yes: args.flags.yes === true, confirm, signal }));
        if (json) print(JSON.stringify({ outcome: result.outcome, runId: result.runId, steps: result.steps, planned: result.planned, plan: result.plan }));
        else if (result.outcome === 'interrupted') print(renderInterrupted(result.steps, result.planned));
        else print(result.steps === 0 ? 'Nothing to do: everything is in its desired state.' : `Converged: ${result.steps} step(s) in ${result.passes} pass(es).`);
        return exitCodeOf(result.outcome, signal);
      }
      case 'plan': {
        const api = await loadApi();
        const plan = await api.planFor(args.flags.file ? (args.flags.file as string) : null, common);
        print(json ? JSON.stringify(plan) : renderPlan(plan));
        return plan.blockers.length > 0 ? 1 : 0;
      }
      case 'status': {
        const api = await loadApi();
        const view = await api.status(common);
        print(json ? JSON.stringify(view) : renderStatus(view));
        return 0;
      }
      case 'events':
        return await showEvents(stateDir, json, args.flags.follow === true, Number(args.flags.since ?? 0), print);
      case 'up':
      case 'down': {
        const api = await loadApi();
        const run = command === 'up' ? api.up : api.down;
        const { result, signal } = await withSignals((signal) => run({ ...common, yes: true, signal }));
        if (!result) {
          print(json ? JSON.stringify({ outcome: 'nothing-recorded', steps: 0 }) : 'Nothing recorded yet: run `thinlayer apply -f MANIFEST` first.');
          return 0;
        }
        if (json) print(JSON.stringify({ outcome: result.outcome, runId: result.runId, steps: result.steps, planned: result.planned }));
        else if (result.outcome === 'interrupted') print(renderInterrupted(result.steps, result.planned));
        else print(result.steps === 0 ? 'Nothing to do.' : `${command === 'up' ? 'Up' : 'Down'}: ${result.steps} step(s).`);
        return exitCodeOf(result.outcome, signal);
      }
      case 'destroy': {
        const api = await loadApi();
        const { result, signal } = await withSignals((signal) => api.destroy({ ...common, yes: args.flags.yes === true, confirm, signal }));
        if (json) print(JSON.stringify({ outcome: result.outcome, steps: result.steps, planned: result.planned }));
        else print(result.outcome === 'interrupted' ? renderInterrupted(result.steps, result.planned) : `Destroyed: ${result.steps} step(s).`);
        return exitCodeOf(result.outcome, signal);
      }
      case 'doctor': {
        const { doctorCommand } = await import('./doctor-command.ts');
        return await doctorCommand({ stateDir, backend: backend as BackendChoice, json, out, err });
      }
      case 'gc': {
        const { gcCommand } = await import('./doctor-command.ts');
        const thinIdFlag = args.flags['thin-id'] as string | undefined;
        if (thinIdFlag !== undefined && !/^\d+$/.test(thinIdFlag)) throw new UserError(`--thin-id takes a thin id (a whole number), not ${JSON.stringify(thinIdFlag)}`, { path: '--thin-id', expected: 'a whole number' }, 'E_USAGE');
        const ask = async (question: string) => {
          if (!interactive) return false;
          const { createInterface } = await import('node:readline/promises');
          const rl = createInterface({ input: process.stdin, output: process.stderr });
          try {
            return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
          } finally {
            rl.close();
          }
        };
        return (await withSignals((signal) => gcCommand({ stateDir, backend: backend as BackendChoice, json, yes: args.flags.yes === true, thinId: thinIdFlag !== undefined ? Number(thinIdFlag) : undefined, keepForeign: args.flags['keep-foreign'] === true, confirm: ask, out, err, signal }))).result;
      }
      case 'watch': {
        const { watchCommand, parseInterval, parseMetricsPort, DEFAULT_INTERVAL_MS } = await import('./watch-command.ts');
        return await watchCommand({
          file: needFile(),
          stateDir,
          backend: backend as BackendChoice,
          json,
          intervalMs: args.flags.interval !== undefined ? parseInterval(args.flags.interval as string) : DEFAULT_INTERVAL_MS,
          metricsPort: args.flags['metrics-port'] !== undefined ? parseMetricsPort(args.flags['metrics-port'] as string) : null,
          out,
          err,
        });
      }
      case 'pool': {
        if (rest[0] !== 'grow') throw new UserError('usage: thinlayer pool grow --data SIZE [--metadata SIZE]', { path: rest[0] ?? 'pool', expected: 'grow' }, 'E_USAGE');
        const size = (flag: string) => (args.flags[flag] === undefined ? undefined : parseSize(args.flags[flag] as string, `--${flag}`));
        const request = { dataBytes: size('data'), metadataBytes: size('metadata') };
        const api = await loadApi();
        // One step: a signal waits for it (the files, the loop devices and the table grow together).
        const { result } = await withSignals((signal) => api.growPoolTo(request, { ...common, signal }));
        print(json ? JSON.stringify(result) : result.reloaded ? `Pool grown: ${result.dataBlocks} data blocks.` : 'Pool files grown; the pool takes the new size when it is next activated.');
        return 0;
      }
      case 'sim': {
        if (rest[0] !== 'reboot') throw new UserError('usage: thinlayer sim reboot', { path: rest[0] ?? 'sim', expected: 'reboot' }, 'E_USAGE');
        const [{ openStateDir }, { acquireLock }] = await Promise.all([import('../events/state-dir.ts'), import('../events/lock.ts')]);
        const dir = await openStateDir(stateDir);
        const lock = await acquireLock(dir, { command: 'sim reboot' });
        try {
          const { SimKernel } = await import('../kernel/sim/index.ts');
          const sim = new SimKernel({ dir: dir.path('sim') });
          await sim.reboot();
          await sim.close();
        } finally {
          await lock.release();
        }
        print(json ? JSON.stringify({ rebooted: true }) : 'Simulated reboot: device-mapper devices, loop devices and mounts are gone; pool metadata and device contents remain. Run `thinlayer up`.');
        return 0;
      }
    }
    return 2;
  } catch (e) {
    return exitCodeFor(e, err, json);
  }
}

/** The one place an error becomes an exit code: it is written to `err` (as JSON with --json) and its code answered. */
export function exitCodeFor(e: unknown, err: NodeJS.WritableStream, json: boolean): number {
  const error = e instanceof ThinlayerError ? e : null;
  if (json) err.write(JSON.stringify({ error: error ? error.toJSON() : { code: 'E_INTERNAL', message: String((e as Error)?.stack ?? e) } }) + '\n');
  else if (error) err.write(`thinlayer: ${error.message}\n`);
  else err.write(`thinlayer: internal error (a bug, please report it): ${(e as Error)?.stack ?? e}\n`);
  return error ? error.exitCode : 1;
}

function parseSize(text: string, flag: string): number {
  try {
    return parseManifestSize(text);
  } catch (e) {
    throw new UserError(`${flag}: ${(e as Error).message}`, { path: flag, expected: 'a size such as 200G' }, 'E_USAGE');
  }
}

/** 0 for a finished run; 128 + the signal's number for one a signal interrupted. */
function exitCodeOf(outcome: string, signal: StopSignal | null): number {
  return outcome === 'interrupted' ? SIGNAL_EXIT[signal ?? 'SIGINT'] : 0;
}

/**
 * SIGINT and SIGTERM let the current step finish and be recorded, then stop: the work sees its
 * signal aborted. Each is caught once: a second one ends the process as the signal does by default,
 * and the step it cuts short is left in doubt for the next run to settle, as after a crash.
 */
async function withSignals<T>(work: (signal: AbortSignal) => Promise<T>): Promise<{ result: T; signal: StopSignal | null }> {
  const controller = new AbortController();
  let received: StopSignal | null = null;
  const onInt = () => stop('SIGINT');
  const onTerm = () => stop('SIGTERM');
  const stop = (name: StopSignal) => {
    received ??= name;
    controller.abort(name);
  };
  process.once('SIGINT', onInt);
  process.once('SIGTERM', onTerm);
  try {
    const result = await work(controller.signal);
    return { result, signal: received };
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}

async function showEvents(stateDir: string, json: boolean, follow: boolean, since: number, print: (t: string) => void): Promise<number> {
  const [{ openStateDir }, { EventLog }] = await Promise.all([import('../events/state-dir.ts'), import('../events/log.ts')]);
  const dir = await openStateDir(stateDir, { readOnly: true });
  const log = await EventLog.openForReading(dir);
  if (!log) {
    if (follow) throw new UserError(`${dir.root} has no event log yet: nothing to follow (run \`thinlayer apply -f MANIFEST\` first)`, { path: '--state-dir' }, 'E_NO_LOG');
    return 0;
  }
  try {
    const { events } = await log.readAll();
    let last = since;
    for (const e of events) {
      if (e.seq <= since) continue;
      print(json ? JSON.stringify(e) : renderEvent(e));
      last = e.seq;
    }
    if (follow) {
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      for await (const e of log.follow(last, { signal: controller.signal })) print(json ? JSON.stringify(e) : renderEvent(e));
    }
    return 0;
  } finally {
    await log.close();
  }
}
