// containerd's own snapshotter conformance suite (snapshots/testsuite, from Debian's
// golang-github-containerd-containerd-dev) against `thinlayer snapshotter --backend kernel` on a
// real pool. The suite binary (test/containerd/suite) is built on the host, offline, and reaches
// the snapshotter only through containerd's proxy client over the unix socket, one namespace per
// case. Every case the suite runs must pass (it skips Rename itself); afterwards, with every
// case's snapshots removed, doctor finds no thin id leaked or lost, and SIGTERM stops the
// snapshotter with status 0. The suite runs twice against one snapshotter: one case at a time
// (pass `seq`, -test.parallel 1), then four at a time (pass `par4`, -test.parallel 4); each case
// keeps the suite's own namespace header under its own, as containerd's proxy-client users do.

import fs from 'node:fs';
import path from 'node:path';
import { buildSuite } from '../../containerd/build-go.mjs';
import { reportedValue, thinIdProblems } from '../scenario-harness.mjs';
import { workDir } from '../vm.mjs';

export const name = 'containerd-suite';

const SUITE_SOURCE = '/usr/share/gocode/src/github.com/containerd/containerd/snapshots/testsuite/testsuite.go';
/** The suite skips this case itself (t.Skip in its source). */
const SKIPPED_BY_THE_SUITE = new Set(['Rename']);

/** The cases the suite runs, read from its source: t.Run("NAME", makeTest(...)). */
export function suiteCases(source = fs.readFileSync(SUITE_SOURCE, 'utf8')) {
  return [...source.matchAll(/t\.Run\("([^"]+)", makeTest\(/g)].map((m) => m[1]);
}

/** The suite's passes (guest-suite.sh): tag and -test.parallel. */
export const PASSES = [
  { tag: 'seq', parallel: 1 },
  { tag: 'par4', parallel: 4 },
];

/** `--- PASS|FAIL|SKIP: TestSnapshotterConformance/NAME` lines of go test -v, by case, for one pass (`TL-SUITE-TAG `; no tag: `TL-SUITE `). */
export function caseResults(output, tag = null) {
  const results = new Map();
  const prefix = tag ? `TL-SUITE-${tag}` : 'TL-SUITE';
  for (const line of output.split('\n')) {
    if (!line.startsWith(`${prefix} `)) continue;
    const m = /^\S+\s+--- (PASS|FAIL|SKIP): TestSnapshotterConformance\/(\S+) \(([\d.]+)s\)/.exec(line);
    if (m) results.set(m[2], { status: m[1], seconds: Number(m[3]) });
  }
  return results;
}

export async function run({ bootVm, log }) {
  const t0 = Date.now();
  const suite = buildSuite();
  log(`suite binary ${path.relative(process.cwd(), suite)} ready in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const expected = suiteCases();
  if (expected.length < 20) throw new Error(`read only ${expected.length} cases from ${SUITE_SOURCE}`);
  const disk = path.join(workDir, `containerd-suite-${process.pid}.img`);
  let result;
  try {
    result = await bootVm({ command: `bash test/containerd/guest-suite.sh ${suite}`, freshDisk: true, disk, timeoutMs: 75 * 60_000 });
  } finally {
    fs.rmSync(disk, { force: true });
  }
  const problems = [];
  for (const pass of PASSES) {
    const results = caseResults(result.output, pass.tag);
    for (const name of expected) {
      const r = results.get(name);
      if (!r) problems.push(`${pass.tag}: ${name}: no result`);
      else if (r.status === 'SKIP' && !SKIPPED_BY_THE_SUITE.has(name)) problems.push(`${pass.tag}: ${name}: skipped`);
      else if (r.status === 'FAIL') problems.push(`${pass.tag}: ${name}: FAILED`);
    }
    const passed = expected.filter((n) => results.get(n)?.status === 'PASS');
    const ms = Number(reportedValue(result.output, `suite-status-${pass.tag}`)?.split('ms=')[1]);
    log(
      `pass ${pass.tag} (-test.parallel ${pass.parallel}): ${passed.length} of ${expected.length} cases passed (${
        [...results]
          .filter(([, r]) => r.status === 'SKIP')
          .map(([n]) => n)
          .join(', ') || 'none'
      } skipped by the suite); ran ${(ms / 1000).toFixed(1)} s`,
    );
    const slowest = [...results].sort((a, b) => b[1].seconds - a[1].seconds).slice(0, 3);
    log(`pass ${pass.tag} slowest cases: ${slowest.map(([n, r]) => `${n} ${r.seconds} s`).join(', ')}`);
  }
  if (reportedValue(result.output, 'snapshotter-exit') !== '0')
    problems.push(`the snapshotter ended with status ${reportedValue(result.output, 'snapshotter-exit')} after SIGTERM`);
  const doctorText = reportedValue(result.output, 'doctor');
  let doctor = null;
  try {
    doctor = JSON.parse(doctorText ?? '');
  } catch {
    problems.push(`doctor printed no JSON after the suite: ${doctorText}`);
  }
  problems.push(...thinIdProblems(doctor).map((p) => `after the suite, ${p}`));
  if (result.exitCode !== 0 && problems.length === 0) problems.push(`the guest script ended with status ${result.exitCode}`);
  if (problems.length > 0) throw new Error(`containerd's snapshotter suite against thinlayer:\n  ${problems.join('\n  ')}`);
}
