// The benchmarks run: every suite but the VM one, on its --quick sizes, into a temporary results
// directory and document. Only the shape of what they write is checked, never a time: benchmarks
// are not tests.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect, onTestFinished, test } from 'vitest';
import { runBench, SUITES } from '../../bench/bench.ts';
import { resultFile, wellFormedProblems, type SuiteResult } from '../../bench/result.ts';

test('npm run bench -- --quick --no-vm writes a well-formed result per suite and the document', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thinlayer-bench-smoke-'));
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  const resultsDir = path.join(dir, 'results');
  const docFile = path.join(dir, 'benchmarks.md');
  const said: string[] = [];

  await runBench({ quick: true, only: null, vm: false, resultsDir, docFile, help: false }, (line) => said.push(line));

  for (const suite of SUITES) {
    const result = JSON.parse(fs.readFileSync(resultFile(resultsDir, suite.name), 'utf8')) as SuiteResult;
    expect(wellFormedProblems(result), suite.name).toEqual([]);
    expect(result.quick).toBe(true);
    expect(result.command).toBe(`npm run bench -- --only ${suite.name} --quick`);
    if (suite.needsVm) {
      // Not run is said, never left silent: in the result, in the output and in the document.
      expect(result.status).toBe('skipped');
      expect(result.reason).toContain('--no-vm');
      expect(said.some((l) => l.includes(`${suite.name}: NOT RUN`))).toBe(true);
    } else {
      expect(result.status, result.reason).toBe('ok');
      expect(result.tables.length).toBeGreaterThan(0);
    }
  }

  const doc = fs.readFileSync(docFile, 'utf8');
  expect(doc).not.toMatch(/\{\{suite:/);
  for (const suite of SUITES) expect(doc).toContain(`npm run bench -- --only ${suite.name} --quick`);
  expect(doc).toContain('**NOT MEASURED: not run: --no-vm was given.**');
  expect(doc).toContain(`${os.availableParallelism()} cores`);

  // The shape check itself can fail: a result without its date or with a ragged table is refused.
  const sample = JSON.parse(fs.readFileSync(resultFile(resultsDir, 'event-log'), 'utf8')) as SuiteResult;
  expect(wellFormedProblems({ ...sample, date: 'yesterday' })).toContain('date: not an ISO date');
  expect(wellFormedProblems({ ...sample, tables: [{ title: 't', columns: ['a', 'b'], rows: [[1]] }] })).toHaveLength(1);
});
