#!/usr/bin/env node
// `npm run test:kernel`: the kernel tier. Boot 1 runs vitest's `kernel` project inside the VM;
// then every multi-boot scenario in test/vm/scenarios runs, each booting the VM as often as it
// needs. Ends with `kernel tier: N passed, M failed` and a non-zero exit when anything failed or
// nothing ran.
//
//   node test/vm/run-kernel-tier.mjs [--no-scenarios | --scenarios-only] [--scenario NAME] [vitest args...]
//
// Arguments it does not know go to vitest, e.g. a file and a test name:
//   npm run test:kernel -- --no-scenarios test/kernel/linux-backend.kernel.test.ts -t 'loop devices'

import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { VmSetupError, bootVm, repoRoot, workDir } from './vm.mjs';

const RESULT_LINE = /^TL-VITEST-RESULT (\{.*\})$/;

function parseArgs(argv) {
  const opts = { vitest: true, scenarios: true, only: null, vitestArgs: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-scenarios') opts.scenarios = false;
    else if (a === '--scenarios-only') opts.vitest = false;
    else if (a === '--scenario') opts.only = argv[++i];
    else if (a.startsWith('--scenario=')) opts.only = a.slice('--scenario='.length);
    else opts.vitestArgs.push(a);
  }
  if (opts.only) opts.vitest = false;
  return opts;
}

function shellQuote(s) {
  return `'${String(s).replace(/'/g, `'\\''`)}'`;
}

const say = (line) => process.stdout.write(`[kernel tier] ${line}\n`);
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

/**
 * vitest in the guest. The checkout is read-only there: `--configLoader runner` loads
 * vitest.config.ts without writing a bundled copy next to it, `--no-cache` skips the results
 * cache in node_modules/.vite, and TMPDIR (a tmpfs) takes everything else, the JSON report too.
 */
async function runVitest(extraArgs) {
  const vitest = [
    'node',
    'node_modules/vitest/vitest.mjs',
    'run',
    '--project',
    'kernel',
    '--configLoader',
    'runner',
    '--no-cache',
    '--reporter',
    'default',
    '--reporter',
    'json',
    '--outputFile.json',
    '/tmp/tl-vitest.json',
    ...extraArgs,
  ]
    .map(shellQuote)
    .join(' ');
  const command = [
    'echo "TL-TIER: vitest starting at $(cut -d" " -f1 /proc/uptime)s"',
    'export TL_VITEST_LAUNCHED_MS=$(date +%s%3N)',
    `${vitest}`,
    'status=$?',
    'echo "TL-TIER: vitest ended at $(cut -d" " -f1 /proc/uptime)s with status $status"',
    // One line the host can parse, from vitest's JSON report.
    `node -e 'const r = JSON.parse(require("fs").readFileSync("/tmp/tl-vitest.json", "utf8")); console.log("TL-VITEST-RESULT " + JSON.stringify({ passed: r.numPassedTests, failed: r.numFailedTests, total: r.numTotalTests, failedFiles: r.testResults.filter((f) => f.status === "failed").map((f) => f.name), startupMs: r.startTime - Number(process.env.TL_VITEST_LAUNCHED_MS) }))' || true`,
    'exit $status',
  ].join('\n');
  // vitest needs no state from earlier boots: a scratch disk of its own lets several tier runs
  // (several engineers on one machine) boot at once; the shared disk.img is for the scenarios.
  const scratch = path.join(workDir, `scratch-${process.pid}.img`);
  let run;
  try {
    run = await bootVm({ command, timeoutMs: 30 * 60_000, freshDisk: true, disk: scratch });
  } finally {
    fs.rmSync(scratch, { force: true });
  }
  const line = run.output
    .split('\n')
    .map((l) => RESULT_LINE.exec(l))
    .find(Boolean);
  const result = line ? JSON.parse(line[1]) : null;
  say(
    `boot 1 (vitest): guest ready after ${seconds(run.readyAfterMs ?? NaN)}, vitest started its run ${seconds(result?.startupMs ?? NaN)} after launch, whole boot ${seconds(run.tookMs)}, vitest exit status ${run.exitCode}`,
  );
  const passed = result?.passed ?? 0;
  let failed = result?.failed ?? 0;
  // A run that failed without a failing test (a startup error, an unhandled error, no files) counts once.
  if (run.exitCode !== 0 && failed === 0) {
    failed = 1;
    say(`vitest failed outside any test (exit status ${run.exitCode}${result ? '' : ', no JSON report'})`);
  }
  if (run.exitCode === 0 && passed === 0) say('vitest ran no tests');
  return { passed, failed };
}

async function loadScenarios(only) {
  const dir = path.join(repoRoot, 'test', 'vm', 'scenarios');
  const files = fs.existsSync(dir)
    ? fs
        .readdirSync(dir)
        .filter((f) => f.endsWith('.mjs'))
        .sort()
    : [];
  const scenarios = [];
  for (const file of files) {
    const mod = await import(pathToFileURL(path.join(dir, file)).href);
    if (typeof mod.name !== 'string' || typeof mod.run !== 'function') throw new Error(`scenario ${file} must export name and run`);
    scenarios.push({ name: mod.name, run: mod.run, file });
  }
  if (only) {
    const chosen = scenarios.filter((s) => s.name === only);
    if (chosen.length === 0) throw new Error(`no scenario named "${only}" (there are: ${scenarios.map((s) => s.name).join(', ') || 'none'})`);
    return chosen;
  }
  return scenarios;
}

/**
 * The guest cannot write the checkout, so it cannot refresh the CLI bundle bin/thinlayer.js
 * prefers: make it fresh here, or the guest's CLI falls back to compiling the sources with tsx on
 * every command, which under emulation costs tens of seconds each time.
 */
async function freshenCliBundle() {
  const script = path.join(repoRoot, 'scripts', 'build.mjs');
  if (!fs.existsSync(script)) return say('no scripts/build.mjs: the guest runs the CLI from the sources through tsx');
  try {
    await (await import(pathToFileURL(script).href)).buildBundle();
  } catch (e) {
    say(`could not build the CLI bundle (${e.message}): the guest runs the CLI from the sources through tsx`);
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const started = Date.now();
  await freshenCliBundle();
  let passed = 0;
  let failed = 0;
  if (opts.vitest) {
    try {
      const r = await runVitest(opts.vitestArgs);
      passed += r.passed;
      failed += r.failed;
    } catch (e) {
      say(`boot 1 (vitest) FAILED: ${e.message}`);
      failed += 1;
      if (e instanceof VmSetupError) return finish(passed, failed, started);
    }
  }
  if (opts.scenarios) {
    for (const scenario of await loadScenarios(opts.only)) {
      const t0 = Date.now();
      say(`scenario ${scenario.name}: starting`);
      const log = (line) => say(`scenario ${scenario.name}: ${line}`);
      try {
        await scenario.run({ bootVm, log });
        passed += 1;
        say(`scenario ${scenario.name}: passed in ${seconds(Date.now() - t0)}`);
      } catch (e) {
        failed += 1;
        say(`scenario ${scenario.name}: FAILED after ${seconds(Date.now() - t0)}: ${e.stack ?? e}`);
        if (e instanceof VmSetupError) break;
      }
    }
  }
  return finish(passed, failed, started);
}

function finish(passed, failed, started) {
  say(`whole tier took ${seconds(Date.now() - started)}`);
  if (passed + failed === 0) say('nothing ran: that is a failure, not a pass');
  console.log(`kernel tier: ${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 || passed + failed === 0 ? 1 : 0;
}

main().catch((e) => {
  console.error(`[kernel tier] ${e.stack ?? e}`);
  console.log('kernel tier: 0 passed, 1 failed');
  process.exitCode = 1;
});
