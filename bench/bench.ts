// Runs the chosen suites, stamps each result with the machine, the date and the command that
// reproduces it, writes bench/results/<suite>.json and renders docs/benchmarks.md from all the
// stored results (so a suite not run this time keeps its last figures, with their own date).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { UserError } from '../src/errors/index.ts';
import { describeMachine } from './machine.ts';
import type { BenchOptions } from './options.ts';
import { readResult, writeResult, type SuiteResult } from './result.ts';
import { renderDocument } from './render.ts';
import type { Suite, SuiteOutput } from './suite.ts';
import { eventLogSuite } from './suites/event-log.ts';
import { reconcileSuite } from './suites/reconcile.ts';
import { spaceSuite } from './suites/space.ts';
import { kernelSuite } from './suites/kernel.ts';
import { tarSuite } from './suites/tar.ts';
import { containerdSuite } from './suites/containerd.ts';
import { snapshotterSuite } from './suites/snapshotter.ts';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const SUITES: readonly Suite[] = [eventLogSuite, reconcileSuite, spaceSuite, tarSuite, snapshotterSuite, kernelSuite, containerdSuite];

export function reproduceCommand(suite: string, quick: boolean): string {
  return `npm run bench -- --only ${suite}${quick ? ' --quick' : ''}`;
}

export interface BenchRun {
  results: SuiteResult[];
  resultFiles: string[];
  docFile: string;
}

export async function runBench(opts: BenchOptions, say: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<BenchRun> {
  const known = new Set(SUITES.map((s) => s.name));
  for (const name of opts.only ?? [])
    if (!known.has(name)) throw new UserError(`no bench suite named ${name} (there are: ${[...known].join(', ')})`, { path: '--only' });
  const chosen = SUITES.filter((s) => opts.only === null || opts.only.includes(s.name));
  const machine = describeMachine();
  const results: SuiteResult[] = [];
  const resultFiles: string[] = [];

  for (const suite of chosen) {
    const date = new Date().toISOString();
    const stamp = { suite: suite.name, title: suite.title, machine, date, command: reproduceCommand(suite.name, opts.quick), quick: opts.quick };
    if (suite.needsVm && !opts.vm) {
      const kept = readResult(opts.resultsDir, suite.name);
      say(`[bench] ${suite.name}: NOT RUN (--no-vm)${kept ? `; docs keep its figures from ${kept.date}` : ''}`);
      if (kept) continue;
      const skipped: SuiteResult = {
        ...stamp,
        status: 'skipped',
        reason: 'not run: --no-vm was given',
        durationMs: 0,
        metrics: {},
        tables: [],
        targets: [],
        notes: [],
      };
      results.push(skipped);
      resultFiles.push(writeResult(opts.resultsDir, skipped));
      continue;
    }
    say(`[bench] ${suite.name}: ${suite.title}${opts.quick ? ' (quick)' : ''}`);
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), `thinlayer-bench-${suite.name}-`));
    const started = performance.now();
    let output: SuiteOutput;
    try {
      output = await suite.run({ quick: opts.quick, scratch, repoRoot, log: (line) => say(`[bench] ${suite.name}: ${line}`) });
    } catch (e) {
      output = { metrics: {}, tables: [], targets: [], notes: [], failure: (e as Error)?.stack ?? String(e) };
    } finally {
      fs.rmSync(scratch, { recursive: true, force: true });
    }
    const { failure, ...figures } = output;
    // A suite that failed half-way may have computed figures from missing phases: keep only real numbers.
    figures.metrics = Object.fromEntries(Object.entries(figures.metrics).filter(([, m]) => Number.isFinite(m.value)));
    const result: SuiteResult = {
      ...stamp,
      status: failure ? 'failed' : 'ok',
      ...(failure ? { reason: failure } : {}),
      durationMs: Math.round(performance.now() - started),
      ...figures,
    };
    if (failure) say(`[bench] ${suite.name}: FAILED: ${failure}`);
    for (const t of result.targets) say(`[bench] ${suite.name}: target ${t.met ? 'met' : 'MISSED'}: ${t.target}: ${t.measured}`);
    say(`[bench] ${suite.name}: ${result.status} in ${(result.durationMs / 1000).toFixed(1)} s`);
    results.push(result);
    resultFiles.push(writeResult(opts.resultsDir, result));
  }

  const stored = SUITES.map((s) => readResult(opts.resultsDir, s.name)).filter((r): r is SuiteResult => r !== null);
  const template = fs.readFileSync(path.join(repoRoot, 'bench', 'template.md'), 'utf8');
  fs.mkdirSync(path.dirname(opts.docFile), { recursive: true });
  fs.writeFileSync(opts.docFile, renderDocument(template, SUITES, stored));
  say(`[bench] wrote ${resultFiles.map((f) => path.relative(process.cwd(), f)).join(', ') || 'no results'} and ${path.relative(process.cwd(), opts.docFile)}`);
  return { results, resultFiles, docFile: opts.docFile };
}
