// Terminal renderings of plans, status and messages. --json output bypasses all of this.

import type { Message, Reporter } from '../messages/message-port.ts';
import type { Plan, Step, PlanDeletes } from '../model/step-contract.ts';
import type { ThinlayerEvent } from '../model/events.ts';
import { formatBytes, listOf, naturalCompare, plural } from '../messages/format.ts';
import { describePlanThings } from '../messages/plan-things.ts';
import { ProgressBar } from './progress-bar.ts';

const SYMBOL: Record<Step['impact'], string> = { none: ' ', update: '~', create: '+', destroy: '-' };

export function renderPlan(plan: Plan): string {
  if (plan.blockers.length > 0) return ['Cannot proceed:', ...plan.blockers.map((b) => `  ! ${b}`)].join('\n');
  const notes = (plan.warnings ?? []).map((w) => `Note: ${w}`);
  if (plan.steps.length === 0) return [...notes, 'No changes: everything is in its desired state.'].join('\n');
  const lines = plan.steps.map((s, i) => `  ${SYMBOL[s.impact]} ${String(i + 1).padStart(3)}. ${s.reason}`);
  return [...notes, `Plan: ${describePlanThings(plan) || 'no change to any thing'} (${plural(plan.steps.length, 'step')})`, ...lines].join('\n');
}

/** The last line of a run that SIGINT or SIGTERM stopped between steps. */
export function renderInterrupted(steps: number, planned: number): string {
  return `Interrupted after ${steps} of ${plural(planned, 'step')}; run the same command again to finish`;
}

const count = (n: number, one: string, many: string) => plural(n, one, many);
const natural = (names: string[]) => [...names].sort(naturalCompare).join(', ');

/** One sentence that counts everything a plan deletes: devices, layers, the base, the pool, files. */
export function renderDeletes(plan: Plan): string {
  const d: PlanDeletes = plan.deletes ?? { devices: [], layers: [], base: false, pool: false, files: [] };
  const parts: string[] = [];
  if (d.devices.length) parts.push(`${count(d.devices.length, 'device', 'devices')} (${natural(d.devices)})`);
  if (d.layers.length) parts.push(`${count(d.layers.length, 'layer', 'layers')} (${natural(d.layers)})`);
  if (d.base) parts.push('the base');
  if (d.pool) parts.push('the pool');
  if (d.files.length) parts.push(`${count(d.files.length, 'file', 'files')} (${d.files.join(', ')})`);
  if (parts.length === 0) return 'This deletes nothing.';
  const alone = parts.length === 1 && (d.devices.length + d.layers.length + d.files.length === 1 || d.base !== d.pool);
  return `This deletes ${listOf(parts)}, with ${alone ? 'all its data' : 'all their data'}.`;
}

export { renderStatus, table } from './status-table.ts';

/**
 * Layer names by step target (`layer:5f70bf18a0860070` → fedora), learnt from the intents read so
 * far: a layer's steps are keyed by its digest, and people know it by the manifest's name.
 */
export class TargetNames {
  private readonly names = new Map<string, string>();
  learn(e: ThinlayerEvent): void {
    if (e.type !== 'step.intent' || !e.target.startsWith('layer:')) return;
    const label = (e.args as { label?: unknown }).label;
    if (typeof label === 'string') this.names.set(e.target, label);
  }
  /** `layer fedora (5f70bf18a0860070)` for a layer whose name is known; the target as logged otherwise. */
  describe(target: string): string {
    const name = this.names.get(target);
    return name ? `layer ${name} (${target.slice('layer:'.length)})` : target.replace(/^(device|layer):/, '$1 ');
  }
}

/** Where a recorded manifest came from: its file, standard input (`-f -`), or the library's memory. */
function manifestSource(file: string | undefined): string {
  if (!file) return '(in memory)';
  return file === '-' || file.endsWith('/-') ? '(standard input)' : file;
}

export function renderEvent(e: ThinlayerEvent, names: TargetNames = new TargetNames()): string {
  const head = `${String(e.seq).padStart(6)} ${e.at} ${e.type}`;
  names.learn(e);
  switch (e.type) {
    case 'step.intent':
      return `${head} ${e.op} ${names.describe(e.target)}${e.txid !== undefined ? ` (txid ${e.txid})` : ''}`;
    case 'step.done':
      return `${head} ${e.op} ${names.describe(e.target)}${e.recovered ? ' (recovered)' : ''}`;
    case 'step.failed':
      return `${head} ${e.op} ${names.describe(e.target)}: ${e.error.message}`;
    case 'desired.set':
      return `${head} ${e.manifest ? `${manifestSource(e.manifest.file)}: ${plural(e.manifest.layers.length, 'layer')}, ${plural(e.manifest.devices.length, 'device')}` : 'nothing (destroy)'}`;
    case 'run.started':
      return `${head} ${e.command} (pid ${e.pid})`;
    case 'run.finished':
      return `${head} ${e.outcome}, ${plural(e.steps, 'step')}`;
    case 'recovery.note':
      return `${head} ${e.kind} ${JSON.stringify(e.detail)}`;
    case 'state.identity':
      return `${head} ${e.id}${e.legacy ? ' (a log of a release before identities)' : ''}`;
    case 'state.backend':
      return `${head} ${e.backend === 'sim' ? 'the simulated kernel' : 'the real kernel'}`;
    case 'pool.foreign-kept':
      return `${head} transaction id ${e.txid}, thin ids ${e.thinIds.join(', ') || 'none'} kept as foreign`;
    case 'snapshot.set':
      return `${head} ${e.snapshot.kind} ${e.snapshot.namespace ? `${e.snapshot.namespace}/` : ''}${e.snapshot.key} (${e.snapshot.id})`;
    case 'snapshot.removed':
      return `${head} ${e.id}`;
  }
}

export interface TerminalReporterOptions {
  /** Told the run id when a run starts (a failure's JSON names it). */
  onRunStarted?: (runId: string) => void;
  /** Draw progress as a bar redrawn in place (a terminal); otherwise a line now and then. */
  tty?: boolean;
  /** Say which kernel `auto` chose (the CLI: on a state dir's first run, or with -v); said unless false. */
  backendNotes?: boolean;
}

/** Prints progress to stderr, so stdout stays for results. A failure is not printed here: main.ts prints it once. */
export class TerminalReporter implements Reporter {
  private readonly bar: ProgressBar | null;
  constructor(
    private readonly out: NodeJS.WritableStream = process.stderr,
    private readonly quiet = false,
    private readonly opts: TerminalReporterOptions = {},
  ) {
    const tty = opts.tty ?? (out as NodeJS.WriteStream).isTTY === true;
    this.bar = tty && !quiet ? new ProgressBar(out) : null;
  }
  notify(m: Message): void {
    const say = (text: string): void => {
      this.bar?.clear();
      this.out.write(`${text}\n`);
    };
    switch (m.code) {
      case 'run.started':
        this.opts.onRunStarted?.(m.runId);
        return;
      case 'backend.notice':
        if (this.opts.backendNotes !== false && !this.quiet) say(`note: ${m.text}`);
        return;
      case 'warning':
        say(`note: ${m.text}`);
        return;
      case 'recovery.torn-tail':
        say(`recovery: the event log ended in a torn line (${formatBytes(m.bytes)}, from a crash); it was cut off and kept in ${m.keptAs}`);
        return;
      case 'state.snapshot-save-failed':
        say(`warning: the projection could not be saved to ${m.file} (${m.error}); the next run replays the log instead and saves again`);
        return;
      case 'recovery.pending':
        say(`recovery: ${plural(m.steps, 'step was', 'steps were')} interrupted by a crash; completing ${m.steps === 1 ? 'it' : 'them'}`);
        return;
      case 'lock.took-over':
        say(`note: took over the lock left by pid ${m.pid} (${m.command}), which is no longer running`);
        return;
      case 'lock.waiting':
        say(`waiting for pid ${m.pid} (${m.command}, started ${m.since})`);
        return;
      case 'step.start':
        if (!this.quiet) say(`[${m.index + 1}/${m.total}] ${m.step.reason}`);
        return;
      case 'step.done':
        this.bar?.clear();
        return;
      case 'progress':
        if (this.quiet) return;
        if (this.bar) {
          this.bar.update(m.task, m.done, m.total, m.unit);
          return;
        }
        say(`  ${m.task}: ${m.unit === 'bytes' ? `${formatBytes(m.done)} of ${formatBytes(m.total)}` : `${m.done}/${m.total} ${m.unit}`}`);
        return;
      case 'snapshotter.ready':
        say(`snapshotter: serving pool ${m.pool} on ${m.socket} (${plural(m.snapshots, 'snapshot')})`);
        return;
      case 'snapshotter.recovered':
        say(
          `snapshotter: recovery deleted ${plural(m.deleted, 'half-made or half-removed device')}, activated ${plural(m.reactivated, 'snapshot')} again, deactivated ${plural(m.deactivated, 'committed snapshot')} a Usage left active, settled ${plural(m.settled, 'interrupted step')}`,
        );
        return;
      case 'snapshotter.request-failed':
        say(`snapshotter: ${m.method} ${m.key}: ${m.error}`);
        return;
      case 'snapshotter.stopped':
        say('snapshotter: stopped');
        return;
      case 'holder.stop-requested':
        say(`${m.kind}: ${m.by} (pid ${m.pid}) asked it to stop; stopping`);
        return;
      case 'holder.stopping':
        say(`asking the ${m.kind} (pid ${m.pid}) to stop, and waiting until it has`);
        return;
      case 'holder.stopped':
        say(`the ${m.kind} (pid ${m.pid}) has stopped`);
        return;
      default:
        return;
    }
  }
}
