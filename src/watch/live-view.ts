// The live terminal view of a watcher: the pool's use, every device with its observed and desired
// state, and the latest things that happened. Rendering is pure (renderLiveView over a LiveModel);
// LiveModel.apply folds the watcher's messages into the model, and describeMessage gives the one-line
// text that both this view and the plain line output use.

import { formatBytes, naturalCompare, plural } from '../messages/format.ts';
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
      return { level: 'warn', text: `recovery: the event log ended in a torn line (${formatBytes(m.bytes)}); kept in ${m.keptAs}` };
    case 'recovery.pending':
      return { level: 'warn', text: `recovery: completing ${plural(m.steps, 'interrupted step')}` };
    case 'lock.took-over':
      return { level: 'warn', text: `took over the lock of pid ${m.pid} (${m.command}), no longer running` };
    case 'step.done':
      return { level: 'info', text: m.step.reason };
    case 'step.failed':
      return { level: 'error', text: `${m.step.reason}: ${m.error}` };
    case 'run.converged':
      return m.steps > 0 ? { level: 'info', text: `converged: ${plural(m.steps, 'step')}` } : null;
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
      return m.steps > 0 ? { level: 'info', text: `run ${m.run}: ${plural(m.steps, 'step')} in ${formatDuration(m.durationMs)}` } : null;
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
        // The command on a line of its own: it is what the reader copies.
        text: `${m.file} deletes ${plural(m.deletes.length, 'thin device')}; watch keeps the recorded desired state until this confirms it:\n  thinlayer apply -f ${m.file} --yes`,
      };
    case 'watch.untrusted-source':
      return { level: 'warn', text: `layer ${m.layer}'s source ${m.source} could be changed by someone but root (${m.why}); watch reads it as it is` };
    case 'watch.stopped':
      return { level: 'info', text: `stopped after ${plural(m.runs, 'run')}` };
    case 'holder.stop-requested':
      return { level: 'warn', text: `${m.by} (pid ${m.pid}) asked watch to stop; stopping after the step under way` };
    case 'pool.use-warning':
      // A warning however full: nothing failed yet (autoextend-blocked is the error).
      return { level: 'warn', text: `pool ${m.role} is ${m.percent}% full (past ${m.level}%)` };
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

/**
 * `text` in lines of at most `width` columns, the first after `first` and the rest after `rest`:
 * wrapped at spaces, and a word longer than a whole line split across lines, never cut off (an
 * address or a command is read, and copied, whole).
 */
export function wrap(text: string, width: number, first = '', rest = ' '.repeat(first.length)): string[] {
  const lines: string[] = [];
  let line = first;
  let empty = true;
  for (let word of text.split(' ')) {
    if (!empty && line.length + 1 + word.length > width) {
      lines.push(line);
      line = rest;
      empty = true;
    }
    // A word longer than a whole line: as much as fits, and the rest on the next lines.
    while (empty && line.length + word.length > width && width > line.length) {
      const room = width - line.length;
      lines.push(line + word.slice(0, room));
      word = word.slice(room);
      line = rest;
    }
    line = empty ? line + word : `${line} ${word}`;
    empty = false;
  }
  lines.push(line);
  return lines.map((l) => l.trimEnd());
}

function time(d: Date): string {
  return d.toTimeString().slice(0, 8);
}

const isCommand = (line: string) => /^ {2}thinlayer /.test(line);

/** The whole screen as text, each line at most `width` columns but a command longer than that (said whole, never cut). */
export function renderLiveView(model: LiveModel, opts: { now: Date; width: number }): string {
  const w = Math.max(40, opts.width);
  const lines: string[] = [];
  const phase =
    model.phase === 'running'
      ? `reconciling (run ${model.run}: ${model.runReasons.join(', ') || 'start'})`
      : model.phase === 'retrying'
        ? `retrying after ${plural(model.consecutiveFailures, 'failed run')}`
        : model.phase === 'idle'
          ? `converged ${model.lastRunEnded ? `${formatDuration(opts.now.getTime() - model.lastRunEnded.getTime())} ago` : ''}`.trim()
          : model.phase;
  lines.push(...wrap(`thinlayer watch ${model.file}  ·  ${phase}`, w));
  lines.push(...wrap(`state ${model.stateDir}  ·  drift check every ${formatDuration(model.intervalMs)}`, w));
  // The metrics address on a line of its own: with --metrics-port 0 its port is only known here.
  if (model.metricsUrl) lines.push(...wrap(`metrics ${model.metricsUrl}`, w));
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
    const rows = [...devices]
      .sort((a, b) => naturalCompare(a.name, b.name))
      .map((d) => [d.name, d.state === d.desired ? d.state : `${d.state} → ${d.desired}`, d.mountpoint ?? '-', d.stablePath ?? d.devPath ?? '-']);
    const headers = ['DEVICE', 'STATE', 'MOUNTPOINT', 'DEV'];
    const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    const fmt = (r: string[], n = r.length) =>
      r
        .slice(0, n)
        .map((c, i) => c.padEnd(widths[i]))
        .join('  ')
        .trimEnd();
    if (fmt(headers).length + widths[3] - 3 <= w) lines.push(fmt(headers), ...rows.map((r) => fmt(r)));
    // Too wide for the screen: each device's path on a line of its own under it, whole.
    else lines.push(fmt(headers, 3), ...rows.flatMap((r) => [fmt(r, 3), ...(r[3] === '-' ? [] : [`        ${r[3]}`])]));
  }
  lines.push('');

  lines.push('Recent:');
  if (model.recent.length === 0) lines.push('  (nothing yet)');
  // Each level marked, and said in words for a warning or an error: the glyph alone is easy to misread.
  const mark: Record<Level, string> = { info: ' ', warn: '!', error: '✗' };
  const word: Record<Level, string> = { info: '', warn: 'warning: ', error: 'error: ' };
  for (const r of model.recent) {
    const [first, ...more] = r.text.split('\n');
    const head = `${mark[r.level]} ${time(r.at)} `;
    const indent = ' '.repeat(head.length);
    lines.push(...wrap(`${word[r.level]}${first}`, w, head, indent));
    // An indented line is a command to run: on a line of its own from the second column, whole, so that it is copied whole.
    for (const m of more) lines.push(...(m.startsWith('  ') ? [`  ${m.trim()}`] : wrap(m.trim(), w, indent)));
  }
  // Tables are wrapped too: a long mountpoint or device path goes on, never cut off.
  return lines.flatMap((l) => (l.length <= w || isCommand(l) ? [l] : wrap(l, w, '', '    '))).join('\n');
}
