// doctor's verdict: pool health and the log-against-kernel comparison, as one plain-data report.
// Pure; `thinlayer doctor --json` prints it as it is.

import type { Finding } from './finding.ts';
import { sortFindings, doctorExitCode } from './finding.ts';
import { poolHealthOf, poolHealthFindings, type PoolHealth } from './pool-health.ts';
import { compareLogWithKernel, orphansOf, missingOf, type DoctorFacts } from './findings.ts';
import { driftFindings, interruptedRunFindings } from './desired-findings.ts';
import { logFindings } from './log-findings.ts';
import { currentPoolSpec } from '../lifecycle/current-pool.ts';

export interface DoctorReport {
  backend: 'sim' | 'kernel';
  stateDir: string;
  pool: PoolHealth;
  /** Thin ids in the pool the log does not own. */
  orphans: number[];
  /** Things the log owns whose thin ids the pool lacks. */
  missing: Array<{ key: string; thinId: number }>;
  /** Thin ids in the pool, when they could be read. */
  thinIds: number[] | null;
  findings: Finding[];
  /** 0 healthy (at most warnings), 1 when any finding is an error. */
  exitCode: 0 | 1;
}

export function diagnose(facts: DoctorFacts, stateDir: string): DoctorReport {
  const { state, observed } = facts;
  const findings: Finding[] = [];
  if (!state.desired && !state.poolSpec && !state.pool) {
    findings.push({
      code: 'state.empty',
      severity: 'info',
      subject: 'log',
      message: `nothing is recorded in ${stateDir}`,
      repair: 'thinlayer apply -f MANIFEST',
    });
  }
  const dataBlockBytes = currentPoolSpec(state)?.blockSizeBytes ?? null;
  const expectedActive = state.pool?.formatted === true && (state.desired !== null || Object.keys(state.things).length > 0);
  findings.push(
    ...poolHealthFindings({
      status: observed.pool?.status ?? null,
      poolDmName: facts.poolDmName,
      metadataPath: observed.metadata?.path ?? null,
      expectedActive,
      downOnPurpose: state.lastRun?.command === 'down',
      dataBlockBytes,
    }),
    ...compareLogWithKernel(facts),
    ...driftFindings(facts),
    ...interruptedRunFindings(facts),
    ...(facts.log ? logFindings(facts.log, stateDir, facts.runInProgress !== null) : []),
  );
  const sorted = sortFindings(findings);
  return {
    backend: observed.backend,
    stateDir,
    pool: poolHealthOf(observed.pool?.status ?? null, facts.poolDmName, dataBlockBytes),
    orphans: orphansOf(facts).map((o) => o.thinId),
    missing: missingOf(facts).map(({ key, thinId }) => ({ key, thinId })),
    thinIds: facts.thinIds,
    findings: sorted,
    exitCode: doctorExitCode(sorted),
  };
}
