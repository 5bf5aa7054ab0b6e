// What one benchmark suite produced: bench/results/<suite>.json. Every result carries the machine,
// the date and the command that reproduces it, so a figure in docs/benchmarks.md is never quoted
// without them. `wellFormedProblems` is what the smoke test checks (the shape, never the times).

import fs from 'node:fs';
import path from 'node:path';
import type { MachineInfo } from './machine.ts';

export type Cell = string | number | null;

export interface Table {
  title: string;
  columns: string[];
  rows: Cell[][];
  /** One line under the table: how the figures were taken. */
  note?: string;
}

export interface TargetCheck {
  /** What is promised, in words (e.g. "p99 at 100k ≤ 1.5 × p99 at 1k"). */
  target: string;
  /** What was measured, in words with the figures. */
  measured: string;
  met: boolean;
}

export interface SuiteResult {
  suite: string;
  title: string;
  /** ok: measured; failed: the suite could not finish (reason says why); skipped: not run (reason says why). */
  status: 'ok' | 'failed' | 'skipped';
  reason?: string;
  machine: MachineInfo;
  /** ISO time the suite started. */
  date: string;
  /** The shell command that reproduces these figures. */
  command: string;
  quick: boolean;
  durationMs: number;
  /** The key figures by name, for programs (the tables carry the same numbers for people). */
  metrics: Record<string, { value: number; unit: string }>;
  tables: Table[];
  targets: TargetCheck[];
  notes: string[];
}

const STATUSES = new Set(['ok', 'failed', 'skipped']);

/** Why `value` is not a well-formed SuiteResult; empty when it is. */
export function wellFormedProblems(value: unknown): string[] {
  const problems: string[] = [];
  if (typeof value !== 'object' || value === null) return ['not an object'];
  const r = value as Partial<SuiteResult>;
  if (typeof r.suite !== 'string' || r.suite === '') problems.push('suite: not a name');
  if (typeof r.title !== 'string' || r.title === '') problems.push('title: missing');
  if (!STATUSES.has(r.status as string)) problems.push(`status: ${String(r.status)} is not ok, failed or skipped`);
  if (r.status !== 'ok' && (typeof r.reason !== 'string' || r.reason === '')) problems.push('reason: a result that is not ok must say why');
  const m = r.machine;
  if (!m || typeof m.cpuModel !== 'string' || !(m.cores >= 1) || !(m.memoryBytes > 0) || typeof m.node !== 'string')
    problems.push('machine: cpuModel, cores, memoryBytes and node are required');
  if (typeof r.date !== 'string' || Number.isNaN(Date.parse(r.date))) problems.push('date: not an ISO date');
  if (typeof r.command !== 'string' || !r.command.startsWith('npm run bench')) problems.push('command: must be the npm run bench command that reproduces it');
  if (typeof r.quick !== 'boolean') problems.push('quick: not a boolean');
  if (!(typeof r.durationMs === 'number' && r.durationMs >= 0)) problems.push('durationMs: not a duration');
  if (typeof r.metrics !== 'object' || r.metrics === null) problems.push('metrics: missing');
  else {
    for (const [name, metric] of Object.entries(r.metrics)) {
      if (typeof metric?.value !== 'number' || !Number.isFinite(metric.value) || typeof metric.unit !== 'string')
        problems.push(`metrics.${name}: needs a finite value and a unit`);
    }
  }
  if (!Array.isArray(r.tables)) problems.push('tables: missing');
  else {
    r.tables.forEach((t, i) => {
      if (typeof t?.title !== 'string' || !Array.isArray(t.columns) || !Array.isArray(t.rows)) {
        problems.push(`tables[${i}]: needs a title, columns and rows`);
        return;
      }
      t.rows.forEach((row, j) => {
        if (!Array.isArray(row) || row.length !== t.columns.length)
          problems.push(`tables[${i}].rows[${j}]: ${Array.isArray(row) ? row.length : 'no'} cells for ${t.columns.length} columns`);
        else if (row.some((c) => c !== null && typeof c !== 'string' && !(typeof c === 'number' && Number.isFinite(c))))
          problems.push(`tables[${i}].rows[${j}]: a cell is neither text, a finite number nor null`);
      });
    });
  }
  if (!Array.isArray(r.targets) || r.targets.some((t) => typeof t?.target !== 'string' || typeof t.measured !== 'string' || typeof t.met !== 'boolean'))
    problems.push('targets: each needs target, measured and met');
  if (!Array.isArray(r.notes) || r.notes.some((n) => typeof n !== 'string')) problems.push('notes: must be strings');
  if (r.status === 'ok' && Array.isArray(r.tables) && r.tables.length === 0) problems.push('tables: an ok result must have figures');
  return problems;
}

export function resultFile(dir: string, suite: string): string {
  return path.join(dir, `${suite}.json`);
}

export function writeResult(dir: string, result: SuiteResult): string {
  fs.mkdirSync(dir, { recursive: true });
  const file = resultFile(dir, result.suite);
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  return file;
}

/** The stored result of a suite, or null when there is none or it cannot be read. */
export function readResult(dir: string, suite: string): SuiteResult | null {
  try {
    return JSON.parse(fs.readFileSync(resultFile(dir, suite), 'utf8')) as SuiteResult;
  } catch {
    return null;
  }
}
