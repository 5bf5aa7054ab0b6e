// A finding: one thing doctor found wrong (or worth knowing), with a stable code that scripts and
// tests match on, a severity, a sentence for people and the command that repairs it.

export type Severity = 'info' | 'warning' | 'error';

export const SEVERITY_RANK: Record<Severity, number> = { info: 0, warning: 1, error: 2 };

export interface Finding {
  /** Stable: e.g. `pool.needs-check`, `thin.orphan`. Documented in docs/recovery.md. */
  code: string;
  severity: Severity;
  /** What the finding is about: `pool`, `thin:ID`, a thing key (`device:web1`) or `dm:NAME`. */
  subject: string;
  message: string;
  /** The command that repairs it; null for findings that need no repair (info). */
  repair: string | null;
}

export function worstSeverity(findings: readonly Finding[]): Severity | null {
  let worst: Severity | null = null;
  for (const f of findings) if (worst === null || SEVERITY_RANK[f.severity] > SEVERITY_RANK[worst]) worst = f.severity;
  return worst;
}

/** doctor's exit code: 1 when anything is broken, 0 when at most warnings remain. */
export function doctorExitCode(findings: readonly Finding[]): 0 | 1 {
  return findings.some((f) => f.severity === 'error') ? 1 : 0;
}

/** Errors first, then warnings, then notes; within a severity, by subject, so output is stable. */
export function sortFindings(findings: readonly Finding[]): Finding[] {
  return [...findings].sort(
    (a, b) =>
      SEVERITY_RANK[b.severity] - SEVERITY_RANK[a.severity] || a.subject.localeCompare(b.subject, 'en', { numeric: true }) || a.code.localeCompare(b.code),
  );
}
