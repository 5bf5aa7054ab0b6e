// Terminal renderings of doctor's report and gc's plan. --json output bypasses all of this.

import type { DoctorReport } from './diagnose.ts';
import type { Finding } from './finding.ts';
import type { GcPlan } from './gc-plan.ts';
import type { GcResult } from './gc-run.ts';
import { describeSpace, type SpaceUse } from './pool-health.ts';
import { plural } from '../messages/format.ts';
import { describePlanThings } from '../messages/plan-things.ts';

function space(what: string, s: SpaceUse | null): string | null {
  return s ? `${what} ${describeSpace(s)} used (${s.percent}%)` : null;
}

function renderFinding(f: Finding): string[] {
  const lines = [`  ${f.severity.toUpperCase().padEnd(7)} ${f.code}  ${f.subject}`, `          ${f.message}`];
  if (f.repair) lines.push(`          repair: ${f.repair}`);
  return lines;
}

export function renderDoctor(r: DoctorReport): string {
  const out: string[] = [];
  const kernel = r.backend === 'sim' ? 'simulated' : 'real';
  const p = r.pool;
  if (p.dmName === null) out.push(`No pool recorded in ${r.stateDir}.`);
  else if (!p.active) out.push(`Pool ${p.dmName} on the ${kernel} kernel: not active`);
  else {
    const mode = [p.mode, p.needsCheck ? 'needs_check' : null].filter(Boolean).join(', ');
    const details = [space('data', p.data), space('metadata', p.metadata), p.transactionId !== null ? `transaction ${p.transactionId}` : null].filter(Boolean);
    out.push(`Pool ${p.dmName} on the ${kernel} kernel: ${mode}${details.length ? `; ${details.join(', ')}` : ''}`);
  }
  if (r.thinIds) {
    const orphans = r.orphans.length ? `, ${plural(r.orphans.length, 'orphan')}: ${r.orphans.join(', ')}` : '';
    const missing = r.missing.length ? `, ${r.missing.length} missing: ${r.missing.map((m) => `${m.key} (${m.thinId})`).join(', ')}` : '';
    out.push(`Thin ids in the pool: ${r.thinIds.length}${orphans}${missing}`);
  }
  if (r.findings.length === 0) {
    out.push('', 'Healthy: nothing to repair.');
    return out.join('\n');
  }
  out.push('', 'Findings:');
  for (const f of r.findings) out.push(...renderFinding(f));
  const errors = r.findings.filter((f) => f.severity === 'error').length;
  const warnings = r.findings.filter((f) => f.severity === 'warning').length;
  const infos = r.findings.filter((f) => f.severity === 'info').length;
  out.push('', `${plural(errors, 'error')}, ${plural(warnings, 'warning')}, ${infos} info. docs/recovery.md explains each finding.`);
  return out.join('\n');
}

export function renderGcPlan(plan: GcPlan, confirmed: boolean): string {
  if (plan.blockers.length > 0) return ['gc cannot run:', ...plan.blockers.map((b) => `  ! ${b}`)].join('\n');
  const out: string[] = [];
  if (plan.settle.length > 0) out.push(`Settle ${plural(plan.settle.length, 'interrupted orphan delete')} by the transaction-id fence.`);
  if (plan.steps.length === 0) out.push('Nothing to collect.');
  else {
    out.push(`gc ${confirmed ? 'will' : 'would'} ${describePlanThings(plan) || 'take'} (${plural(plan.steps.length, 'step')}):`);
    for (const [i, s] of plan.steps.entries()) out.push(`  ${s.impact === 'destroy' ? '-' : '~'} ${String(i + 1).padStart(3)}. ${s.reason}`);
  }
  if (plan.skipped.length > 0) out.push('Left alone:', ...plan.skipped.map((s) => `  ${s.subject}: ${s.reason}`));
  if (!confirmed && (plan.steps.length > 0 || plan.settle.length > 0)) out.push('', 'Nothing was changed: run `thinlayer gc --yes` to do it.');
  return out.join('\n');
}

/** gc's last line: the things it deleted (from its plan), and the interrupted steps it settled. */
export function renderGcResult(result: GcResult, plan?: Pick<GcPlan, 'steps'>): string {
  if (result.steps === 0 && result.settled === 0) return 'Nothing was changed.';
  const things = plan && result.steps === plan.steps.length ? describePlanThings(plan, 'past') : '';
  const settled = result.settled ? `, ${plural(result.settled, 'interrupted step')} settled` : '';
  return `gc: ${things || `${plural(result.steps, 'step')} done`}${things ? ` (${plural(result.steps, 'step')})` : ''}${settled}.`;
}
