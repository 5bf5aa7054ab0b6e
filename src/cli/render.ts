// Terminal renderings of plans, status and messages. --json output bypasses all of this.

import type { Message, Reporter } from '../messages/port.ts';
import type { Plan, Step } from '../plan/steps.ts';
import type { StatusView } from '../api/status.ts';
import type { ThinlayerEvent } from '../events/types.ts';
import { formatBytes } from '../messages/format.ts';

const SYMBOL: Record<Step['impact'], string> = { none: ' ', update: '~', create: '+', destroy: '-' };

export function renderPlan(plan: Plan): string {
  if (plan.blockers.length > 0) return ['Cannot proceed:', ...plan.blockers.map((b) => `  ! ${b}`)].join('\n');
  if (plan.steps.length === 0) return 'No changes: everything is in its desired state.';
  const lines = plan.steps.map((s, i) => `  ${SYMBOL[s.impact]} ${String(i + 1).padStart(3)}. ${s.reason}`);
  const counts = (['create', 'update', 'destroy'] as const).map((k) => `${plan.steps.filter((s) => s.impact === k).length} to ${k}`);
  return [`Plan: ${plan.steps.length} steps (${counts.join(', ')})`, ...lines].join('\n');
}

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => r.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [fmt(headers), ...rows.map(fmt)].join('\n');
}

export function renderStatus(s: StatusView): string {
  const out: string[] = [];
  if (!s.pool) return `No pool recorded in ${s.stateDir}: run \`thinlayer apply -f MANIFEST\`.`;
  const p = s.pool;
  out.push(`Pool ${p.name} (${p.dmName}) on the ${s.backend === 'sim' ? 'simulated' : 'real'} kernel: ${p.active ? p.mode : 'inactive'}${p.needsCheck ? ', NEEDS CHECK' : ''}`);
  if (p.data && p.metadata) {
    out.push(`  data ${formatBytes(p.data.usedBytes)} of ${formatBytes(p.data.totalBytes)} (${p.data.percent}%), metadata ${formatBytes(p.metadata.usedBytes)} of ${formatBytes(p.metadata.totalBytes)} (${p.metadata.percent}%), transaction ${p.transactionId}`);
  }
  if (s.layers.length > 0) {
    out.push('', table(['LAYER', 'PARENT', 'STATE', 'THIN ID', 'CHAIN ID', 'USED BY'], s.layers.map((l) => [l.name, l.parent ?? '(base)', l.state, l.thinId === null ? '-' : String(l.thinId), l.chainId ? l.chainId.slice(0, 19) : '-', l.usedBy.join(',') || '-'])));
  }
  if (s.devices.length > 0) {
    out.push('', table(['DEVICE', 'LAYER', 'STATE', 'DESIRED', 'MOUNTPOINT', 'DEV'], s.devices.map((d) => [d.name, d.layer, d.state === d.desired ? d.state : `${d.state} (!)`, d.desired, d.mountpoint ?? '-', d.devPath ?? '-'])));
  }
  if (s.snapshots && s.snapshots.length > 0) {
    out.push('', table(['SNAPSHOT (containerd)', 'KIND', 'PARENT', 'THIN ID', 'ACTIVE'], s.snapshots.map((x) => [`${x.namespace ? `${x.namespace}/` : ''}${x.key}`, x.kind, x.parent ?? '-', String(x.thinId ?? '-'), x.active ? 'yes' : 'no'])));
  }
  if (s.unwanted.length > 0) out.push('', `Not in the manifest any more (the next apply deletes them): ${s.unwanted.join(', ')}`);
  if (s.pendingSteps > 0) out.push('', `${s.pendingSteps} step(s) were interrupted: the next apply or up completes them.`);
  return out.join('\n');
}

export function renderEvent(e: ThinlayerEvent): string {
  const head = `${String(e.seq).padStart(6)} ${e.at} ${e.type}`;
  switch (e.type) {
    case 'step.intent':
      return `${head} ${e.op} ${e.target}${e.txid !== undefined ? ` (txid ${e.txid})` : ''}`;
    case 'step.done':
      return `${head} ${e.op} ${e.target}${e.recovered ? ' (recovered)' : ''}`;
    case 'step.failed':
      return `${head} ${e.op} ${e.target}: ${e.error.message}`;
    case 'desired.set':
      return `${head} ${e.manifest ? `${e.manifest.file || '(in memory)'}: ${e.manifest.layers.length} layers, ${e.manifest.devices.length} devices` : 'nothing (destroy)'}`;
    case 'run.started':
      return `${head} ${e.command} (pid ${e.pid})`;
    case 'run.finished':
      return `${head} ${e.outcome}, ${e.steps} steps`;
    case 'recovery.note':
      return `${head} ${e.kind} ${JSON.stringify(e.detail)}`;
    case 'snapshot.set':
      return `${head} ${e.snapshot.kind} ${e.snapshot.namespace ? `${e.snapshot.namespace}/` : ''}${e.snapshot.key} (${e.snapshot.id})`;
    case 'snapshot.removed':
      return `${head} ${e.id}`;
  }
}

/** Prints progress to stderr, so stdout stays for results. */
export class TerminalReporter implements Reporter {
  constructor(
    private readonly out: NodeJS.WritableStream = process.stderr,
    private readonly quiet = false,
  ) {}
  notify(m: Message): void {
    const say = (text: string): void => void this.out.write(text + "\n");
    switch (m.code) {
      case 'backend.notice':
      case 'warning':
        return say(`note: ${m.text}`);
      case 'recovery.torn-tail':
        return say(`recovery: the event log ended in a torn line (${m.bytes} bytes, from a crash); it was set aside`);
      case 'recovery.pending':
        return say(`recovery: ${m.steps} step(s) were interrupted by a crash; completing them`);
      case 'lock.took-over':
        return say(`note: took over the lock left by pid ${m.pid} (${m.command}), which is no longer running`);
      case 'step.start':
        if (!this.quiet) say(`[${m.index + 1}/${m.total}] ${m.step.reason}`);
        return;
      case 'step.failed':
        return say(`  failed: ${m.error}`);
      case 'progress':
        if (!this.quiet) say(`  ${m.task}: ${m.done}/${m.total} ${m.unit}`);
        return;
      case 'snapshotter.ready':
        return say(`snapshotter: serving pool ${m.pool} on ${m.socket} (${m.snapshots} snapshot(s))`);
      case 'snapshotter.recovered':
        return say(`snapshotter: recovery deleted ${m.deleted} half-made or half-removed device(s), activated ${m.reactivated} snapshot(s) again, settled ${m.settled} interrupted step(s)`);
      case 'snapshotter.request-failed':
        return say(`snapshotter: ${m.method} ${m.key}: ${m.error}`);
      case 'snapshotter.stopped':
        return say('snapshotter: stopped');
      default:
        return;
    }
  }
}
