// Each command's run: what it asks of the library API and how its result is printed. Parsing is
// program.ts's; turning errors into exit codes is main.ts's.
//
// Everything beyond this file is imported when a command runs: `--help` loads nothing more, `plan`
// does not load watch mode (rxjs), doctor or the Linux backend. In the bundle each of these is a
// chunk of its own (scripts/build.mjs), read only when imported.

import { resolve } from 'node:path';
import type { Command } from 'commander';
import { findCommand, type Invocation } from './program.ts';
import { renderPlan, renderStatus, renderEvent, renderDeletes, TerminalReporter } from './render.ts';
import { summaryLine, type CliOutput } from './output.ts';
import { SIGNAL_EXIT, type StopSignal } from './exit-codes.ts';
import { UserError } from '../errors/index.ts';
import type { BackendChoice } from '../kernel/select.ts';
import type { Plan } from '../model/step-contract.ts';
import type { ThinlayerEvent } from '../model/events.ts';
import { parseSize as parseManifestSize } from '../manifest/sizes.ts';

const loadApi = () => import('../api/index.ts');

/** Exit codes of --detailed-exitcode (terraform's convention). */
const DETAILED = { converged: 0, failed: 1, changes: 2 } as const;

export async function runCommand(inv: Invocation, program: Command, io: CliOutput, stateDirOption: string): Promise<number> {
  const o = inv.opts;
  const json = o.json === true;
  const backend = (o.backend as BackendChoice | undefined) ?? 'auto';
  const stateDir = resolve(stateDirOption);
  const reporter = new TerminalReporter(io.err, json || o.quiet === true, { onRunStarted: (runId) => (io.runId = runId) });
  const common = { stateDir, backend, reporter };
  const confirm = async (plan: Plan) => {
    io.note(renderPlan(plan));
    if (process.stdin.isTTY !== true || json) {
      io.note(renderDeletes(plan));
      return false;
    }
    const { createInterface } = await import('node:readline/promises');
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    try {
      const answer = await rl.question(`${renderDeletes(plan)} Go ahead? [y/N] `);
      return /^y(es)?$/i.test(answer.trim());
    } finally {
      rl.close();
    }
  };
  const manifestArg = async (): Promise<string | import('../manifest/load.ts').ManifestSource> => {
    const file = o.file as string | undefined;
    if (file === undefined) throw new UserError(`${inv.command} needs a manifest: -f FILE (or -f - for standard input)`, { path: '--file', expected: 'a manifest file' }, 'E_USAGE');
    if (file !== '-') return file;
    const { readManifestStdin } = await import('../manifest/load.ts');
    return readManifestStdin(process.stdin);
  };

  switch (inv.command) {
    case 'help': {
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
    case 'apply': {
      const api = await loadApi();
      const { result, signal } = await withSignals((signal) => manifestArg().then((m) => api.apply(m, { ...common, yes: o.yes === true, confirm, signal })));
      if (json) io.print(JSON.stringify({ outcome: result.outcome, runId: result.runId, steps: result.steps, planned: result.planned, passes: result.passes, plan: result.plan }));
      else io.print(summaryLine({ command: 'apply', ...result }));
      return exitCodeOf(result.outcome, signal);
    }
    case 'plan': {
      const api = await loadApi();
      const plan = await api.planFor(o.file === undefined ? null : await manifestArg(), common);
      io.print(json ? JSON.stringify(plan) : renderPlan(plan));
      if (plan.blockers.length > 0) return DETAILED.failed;
      return o.detailedExitcode === true && plan.steps.length > 0 ? DETAILED.changes : DETAILED.converged;
    }
    case 'status': {
      const api = await loadApi();
      if (o.detailedExitcode !== true) {
        const view = await api.status(common);
        io.print(json ? JSON.stringify(view) : renderStatus(view));
        return 0;
      }
      // Drift is whatever `up` would change: the planner's answer, read with the status in one look.
      const { view, plan } = await api.statusWithPlan(common);
      io.print(json ? JSON.stringify(view) : renderStatus(view));
      if (plan.blockers.length > 0) return DETAILED.failed;
      return plan.steps.length > 0 || view.pendingSteps > 0 ? DETAILED.changes : DETAILED.converged;
    }
    case 'events':
      return showEvents(stateDir, json, o.follow === true, parseSince(o.since as string | undefined), io);
    case 'up':
    case 'down': {
      const api = await loadApi();
      const run = inv.command === 'up' ? api.up : api.down;
      const { result, signal } = await withSignals((signal) => run({ ...common, yes: true, force: o.force === true, signal }));
      if (!result) {
        io.print(json ? JSON.stringify({ outcome: 'nothing-recorded', steps: 0 }) : summaryLine({ command: inv.command, outcome: 'nothing-recorded', steps: 0 }));
        return 0;
      }
      io.print(json ? JSON.stringify({ outcome: result.outcome, runId: result.runId, steps: result.steps, planned: result.planned }) : summaryLine({ command: inv.command, ...result }));
      return exitCodeOf(result.outcome, signal);
    }
    case 'destroy': {
      const api = await loadApi();
      const { result, signal } = await withSignals((signal) => api.destroy({ ...common, yes: o.yes === true, force: o.force === true, confirm, signal }));
      if (!result) {
        io.print(json ? JSON.stringify({ outcome: 'nothing-recorded', steps: 0 }) : summaryLine({ command: 'destroy', outcome: 'nothing-recorded', steps: 0 }));
        return 0;
      }
      io.print(json ? JSON.stringify({ outcome: result.outcome, runId: result.runId, steps: result.steps, planned: result.planned }) : summaryLine({ command: 'destroy', ...result }));
      return exitCodeOf(result.outcome, signal);
    }
    case 'doctor': {
      const { doctorCommand } = await import('./doctor-command.ts');
      return doctorCommand({ stateDir, backend, json, out: io.out, err: io.err });
    }
    case 'gc': {
      const { gcCommand } = await import('./doctor-command.ts');
      const thinId = o.thinId as string | undefined;
      if (thinId !== undefined && !/^\d+$/.test(thinId)) throw new UserError(`--thin-id takes a thin id (a whole number), not ${JSON.stringify(thinId)}`, { path: '--thin-id', expected: 'a whole number' }, 'E_USAGE');
      const ask = async (question: string) => {
        if (process.stdin.isTTY !== true || json) return false;
        const { createInterface } = await import('node:readline/promises');
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        try {
          return /^y(es)?$/i.test((await rl.question(`${question} [y/N] `)).trim());
        } finally {
          rl.close();
        }
      };
      const gc = (signal: AbortSignal) =>
        gcCommand({ stateDir, backend, json, yes: o.yes === true, thinId: thinId !== undefined ? Number(thinId) : undefined, keepForeign: o.keepForeign === true, confirm: ask, out: io.out, err: io.err, signal });
      return (await withSignals(gc)).result;
    }
    case 'watch': {
      const { watchCommand, parseInterval, parseMetricsPort, DEFAULT_INTERVAL_MS } = await import('./watch-command.ts');
      const file = o.file as string | undefined;
      if (file === undefined) throw new UserError('watch needs a manifest: -f FILE', { path: '--file', expected: 'a manifest file' }, 'E_USAGE');
      if (file === '-') throw new UserError('watch follows a manifest file as it changes: standard input cannot be watched', { path: '--file', expected: 'a manifest file' }, 'E_USAGE');
      return watchCommand({
        file,
        stateDir,
        backend,
        json,
        intervalMs: o.interval !== undefined ? parseInterval(o.interval as string) : DEFAULT_INTERVAL_MS,
        metricsPort: o.metricsPort !== undefined ? parseMetricsPort(o.metricsPort as string) : null,
        out: io.out,
        err: io.err,
      });
    }
    case 'snapshotter': {
      const socket = o.socket as string | undefined;
      if (!socket) throw new UserError('snapshotter needs --socket PATH (containerd dials unix://PATH)', { path: '--socket', expected: 'a socket path' }, 'E_USAGE');
      const file = o.file as string | undefined;
      if (file === undefined || file === '-') throw new UserError('snapshotter needs a manifest file naming its pool: -f FILE', { path: '--file', expected: 'a manifest file' }, 'E_USAGE');
      const { runSnapshotter } = await import('../snapshotter/command.ts');
      await withSignals((signal) => runSnapshotter({ manifest: file, socket, stateDir, backend, reporter, signal }));
      reporter.notify({ code: 'snapshotter.stopped' });
      return 0;
    }
    case 'pool': {
      const size = (flag: 'data' | 'metadata') => (o[flag] === undefined ? undefined : parseSize(o[flag] as string, `--${flag}`));
      const request = { dataBytes: size('data'), metadataBytes: size('metadata') };
      if (request.dataBytes === undefined && request.metadataBytes === undefined) throw new UserError('pool grow needs a new size: --data SIZE and/or --metadata SIZE', { path: '--data', expected: 'a size such as 200G' }, 'E_USAGE');
      const api = await loadApi();
      // One step: a signal waits for it (the files, the loop devices and the table grow together).
      const { result } = await withSignals((signal) => api.growPoolTo(request, { ...common, signal }));
      if (!result) {
        io.print(json ? JSON.stringify({ outcome: 'nothing-recorded', steps: 0 }) : summaryLine({ command: 'pool grow', outcome: 'nothing-recorded', steps: 0 }));
        return 0;
      }
      if (json) io.print(JSON.stringify({ outcome: 'done', ...result }));
      else io.print(`pool grow: done; ${result.reloaded ? `the pool now has ${result.dataBlocks} data blocks` : 'the pool takes the new size when it is next activated'}.`);
      return 0;
    }
    case 'sim': {
      if (backend === 'kernel') throw new UserError('sim reboot reboots the simulated kernel only: it cannot be given --backend kernel', { path: '--backend', expected: 'sim or auto' }, 'E_USAGE');
      const [{ openStateDir }, { acquireLock }, { inFile }] = await Promise.all([import('../events/state-dir.ts'), import('../events/lock.ts'), import('../errors/index.ts')]);
      const dir = await openStateDir(stateDir);
      const lock = await acquireLock(dir, { command: 'sim reboot' }).catch(inFile(dir.path('lock')));
      try {
        const { SimKernel } = await import('../kernel/sim/index.ts');
        const sim = new SimKernel({ dir: dir.path('sim') });
        await sim.reboot().catch(inFile(dir.path('sim')));
        await sim.close();
      } finally {
        await lock.release();
      }
      io.print(json ? JSON.stringify({ rebooted: true }) : 'Simulated reboot: device-mapper devices, loop devices and mounts are gone; pool metadata and device contents remain. Run `thinlayer up`.');
      return 0;
    }
  }
  throw new UserError(`unknown command "${inv.command}"`, { path: inv.command }, 'E_USAGE');
}

function parseSize(text: string, flag: string): number {
  try {
    return parseManifestSize(text);
  } catch (e) {
    throw new UserError(`${flag}: ${(e as Error).message}`, { path: flag, expected: 'a size such as 200G' }, 'E_USAGE');
  }
}

/** Where `events --since` starts: after a sequence number, or at a time. */
export type Since = { seq: number } | { time: number };

export function parseSince(text: string | undefined): Since {
  if (text === undefined) return { seq: 0 };
  if (/^\d+$/.test(text)) return { seq: Number(text) };
  // A time must look like one (ISO 8601: a date, optionally a time): Date.parse alone takes "1" or "May".
  const time = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(time)) {
    throw new UserError(`--since ${JSON.stringify(text)} is neither a sequence number nor a time`, { path: '--since', expected: 'a sequence number such as 120, or a time such as 2026-12-01T10:00:00Z' }, 'E_USAGE');
  }
  return { time };
}

function after(e: ThinlayerEvent, since: Since): boolean {
  return 'seq' in since ? e.seq > since.seq : Date.parse(e.at) >= since.time;
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
  const stop = (name: StopSignal) => {
    received ??= name;
    controller.abort(name);
  };
  const onInt = () => stop('SIGINT');
  const onTerm = () => stop('SIGTERM');
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

async function showEvents(stateDir: string, json: boolean, follow: boolean, since: Since, io: CliOutput): Promise<number> {
  const [{ openStateDir }, { EventLog }] = await Promise.all([import('../events/state-dir.ts'), import('../events/log.ts')]);
  const dir = await openStateDir(stateDir, { readOnly: true });
  const log = await EventLog.openForReading(dir);
  if (!log) {
    if (follow) throw new UserError(`${dir.root} has no event log yet: nothing to follow (run \`thinlayer apply -f MANIFEST\` first)`, { path: '--state-dir' }, 'E_NO_LOG');
    return 0;
  }
  const show = (e: ThinlayerEvent) => io.print(json ? JSON.stringify(e) : renderEvent(e));
  try {
    const { events } = await log.readAll();
    let last = 'seq' in since ? since.seq : 0;
    for (const e of events) {
      if (io.readerGone.signal.aborted) return 0;
      if (after(e, since)) show(e);
      last = Math.max(last, e.seq);
    }
    if (follow) {
      const controller = new AbortController();
      const stop = () => controller.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      io.readerGone.signal.addEventListener('abort', stop, { once: true });
      try {
        for await (const e of log.follow(last, { signal: controller.signal })) show(e);
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    }
    return 0;
  } finally {
    await log.close();
  }
}
