// The live terminal view of a watcher: the pool's use, every device with its observed and desired
// state, and the latest things that happened. Rendering is pure (renderLiveView over a LiveModel);
// LiveModel.apply folds the watcher's messages into the model, and describeMessage gives the one-line
// text that both this view and the plain line output use.

import { formatBytes } from '../messages/format.ts';
import type { Message } from '../messages/message-port.ts';
import type { StatusView } from '../app/status-view.ts';

export type Level = 'info' | 'warn' | 'error';

export interface RecentLine {
  at: Date;
  level: Level;
  text: string;
}

/** One line for people, or null for messages too fine-grained to show (plans, progress, step starts). */
export function describeMessage(m: Message): { level: Level; text: string } | null {
  switch (m.code) {
    case 'backend.notice':
    case 'warning':
      return { level: 'warn', text: m.text };
    case 'recovery.torn-tail':
      return { level: 'warn', text: `recovery: the event log ended in a torn line (${m.bytes} bytes); kept in ${m.keptAs}` };
    case 'recovery.pending':
      return { level: 'warn', text: `recovery: completing ${m.steps} interrupted step(s)` };
    case 'lock.took-over':
      return { level: 'warn', text: `took over the lock of pid ${m.pid} (${m.command}), no longer running` };
    case 'step.done':
      return { level: 'info', text: m.step.reason };
    case 'step.failed':
      return { level: 'error', text: `${m.step.reason}: ${m.error}` };
    case 'run.converged':
      return m.steps > 0 ? { level: 'info', text: `converged: ${m.steps} step(s)` } : null;
    case 'run.failed':
      return null; // said by watch.run-failed, with the retry delay
    case 'watch.started':
      return {
        level: 'info',
        text: `watching ${m.file}, drift check every ${formatDuration(m.intervalMs)}${m.metricsUrl ? `, metrics at ${m.metricsUrl}` : ''}`,
      };
    case 'watch.run':
      return null;
    case 'watch.run-done':
      return m.steps > 0 ? { level: 'info', text: `run ${m.run}: ${m.steps} step(s) in ${formatDuration(m.durationMs)}` } : null;
    case 'watch.run-failed':
      return { level: 'error', text: `run ${m.run} failed (${m.failures} in a row): ${m.error}; retrying in ${formatDuration(m.retryInMs)}` };
    case 'watch.manifest-invalid':
      return {
        level: 'error',
        text: `${m.error}\n  (keeping ${m.keeping === 'last-valid' ? 'the last valid manifest' : m.keeping === 'recorded' ? 'the recorded desired state' : 'nothing: no valid manifest yet'})`,
      };
    case 'watch.needs-confirmation':
      return {
        level: 'warn',
        text: `${m.file} deletes ${m.deletes.length} thin device(s); watch keeps the recorded desired state until \`thinlayer apply -f ${m.file} --yes\` confirms it`,
      };
    case 'watch.untrusted-source':
      return { level: 'warn', text: `layer ${m.layer}'s source ${m.source} could be changed by someone but root (${m.why}); watch reads it as it is` };
    case 'watch.stopped':
      return { level: 'info', text: `stopped after ${m.runs} run(s)` };
    case 'holder.stop-requested':
      return { level: 'warn', text: `${m.by} (pid ${m.pid}) asked watch to stop; stopping after the step under way` };
    case 'pool.use-warning':
      return { level: m.level >= 90 ? 'error' : 'warn', text: `pool ${m.role} is ${m.percent}% full (past ${m.level}%)` };
    case 'pool.grown':
      return { level: 'info', text: `pool ${m.role} grown from ${formatBytes(m.fromBytes)} to ${formatBytes(m.toBytes)}` };
    case 'pool.autoextend-blocked':
      return { level: 'error', text: `pool ${m.role} is ${m.percent}% full and cannot grow: ${m.reason}` };
    default:
      return null;
  }
}

export interface LiveModel {
  file: string;
  stateDir: string;
  intervalMs: number;
  metricsUrl: string | null;
  phase: 'starting' | 'running' | 'idle' | 'retrying' | 'stopped';
  run: number;
  runReasons: string[];
  lastRunEnded: Date | null;
  consecutiveFailures: number;
  status: StatusView | null;
  recent: RecentLine[];
}

export const RECENT_LINES = 8;

export function initialLiveModel(file: string, stateDir: string, intervalMs: number): LiveModel {
  return {
    file,
    stateDir,
    intervalMs,
    metricsUrl: null,
    phase: 'starting',
    run: 0,
    runReasons: [],
    lastRunEnded: null,
    consecutiveFailures: 0,
    status: null,
    recent: [],
  };
}

/** Pure: the model after one message. */
export function applyMessage(model: LiveModel, m: Message, at: Date): LiveModel {
  let next = model;
  switch (m.code) {
    case 'watch.started':
      next = { ...next, metricsUrl: m.metricsUrl };
      break;
    case 'watch.run':
      next = { ...next, phase: 'running', run: m.run, runReasons: m.reasons };
      break;
    case 'watch.run-done':
      next = { ...next, phase: 'idle', lastRunEnded: at, consecutiveFailures: 0 };
      break;
    case 'watch.run-failed':
      next = { ...next, phase: 'retrying', lastRunEnded: at, consecutiveFailures: m.failures };
      break;
    case 'watch.stopped':
      next = { ...next, phase: 'stopped' };
      break;
  }
  const line = describeMessage(m);
  if (line) next = { ...next, recent: [...next.recent, { at, ...line }].slice(-RECENT_LINES) };
  return next;
}

export function withStatus(model: LiveModel, status: StatusView): LiveModel {
  return { ...model, status };
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${Math.round(ms / 100) / 10}s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
  return `${Math.floor(ms / 3_600_000)}h${Math.floor((ms % 3_600_000) / 60_000)}m`;
}

function bar(percent: number, width: number): string {
  const filled = Math.max(0, Math.min(width, Math.round((percent / 100) * width)));
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

function clip(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`;
}

function time(d: Date): string {
  return d.toTimeString().slice(0, 8);
}

/** The whole screen as text, each line at most `width` columns. */
export function renderLiveView(model: LiveModel, opts: { now: Date; width: number }): string {
  const w = Math.max(40, opts.width);
  const lines: string[] = [];
  const phase =
    model.phase === 'running'
      ? `reconciling (run ${model.run}: ${model.runReasons.join(', ') || 'start'})`
      : model.phase === 'retrying'
        ? `retrying after ${model.consecutiveFailures} failed run(s)`
        : model.phase === 'idle'
          ? `converged ${model.lastRunEnded ? `${formatDuration(opts.now.getTime() - model.lastRunEnded.getTime())} ago` : ''}`.trim()
          : model.phase;
  lines.push(`thinlayer watch ${model.file}  ·  ${phase}`);
  lines.push(`state ${model.stateDir}  ·  drift check every ${formatDuration(model.intervalMs)}${model.metricsUrl ? `  ·  ${model.metricsUrl}` : ''}`);
  lines.push('');

  const s = model.status;
  const pool = s?.pool ?? null;
  if (!pool) lines.push('Pool: none recorded yet');
  else {
    lines.push(`Pool ${pool.name}: ${pool.active ? (pool.mode ?? 'active') : 'inactive'}${pool.needsCheck ? ', NEEDS CHECK' : ''}`);
    for (const role of ['data', 'metadata'] as const) {
      const use = pool[role];
      if (use)
        lines.push(
          `  ${role.padEnd(8)} ${bar(use.percent, 20)} ${String(use.percent).padStart(5)}%  ${formatBytes(use.usedBytes)} of ${formatBytes(use.totalBytes)}`,
        );
    }
  }
  lines.push('');

  const devices = s?.devices ?? [];
  if (devices.length === 0) lines.push('Devices: none');
  else {
    const rows = devices.map((d) => [d.name, d.state === d.desired ? d.state : `${d.state} → ${d.desired}`, d.mountpoint ?? '-', d.devPath ?? '-']);
    const headers = ['DEVICE', 'STATE', 'MOUNTPOINT', 'DEV'];
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const fmt = (r: string[]) =>
      r
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd();
    lines.push(fmt(headers), ...rows.map(fmt));
  }
  lines.push('');

  lines.push('Recent:');
  if (model.recent.length === 0) lines.push('  (nothing yet)');
  const mark: Record<Level, string> = { info: ' ', warn: '!', error: '✗' };
  for (const r of model.recent) {
    const [first, ...more] = r.text.split('\n');
    lines.push(`${mark[r.level]} ${time(r.at)} ${first}`);
    for (const m of more) lines.push(`           ${m}`);
  }
  return lines.map((l) => clip(l, w)).join('\n');
}
