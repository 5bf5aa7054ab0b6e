// The crash walk over changes to what exists: a layer change (each device replaced by a snapshot of
// the new layer), a device's raised size, a pool grow and a device's removal, each applied by a CLI
// killed with SIGKILL (THINLAYER_CRASH_POINT=k) and, for a few steps, stopped with SIGINT. After the
// same apply again: every device holds its desired layer's files (a marker file read in the mounted
// device) and its data, the re-plan is empty, doctor --json has no warning or error, and no thin id
// is leaked.
//
// Every boundary of these runs would take minutes: the walk takes, for each op kind a change runs,
// both sides of its first step's doubt (just after its intent is durable, just before its outcome
// is appended), and the desired state recorded before any step; a pool grow, one step of a few
// kernel calls, is killed at every boundary inside it. Each crash starts from a copy of the same
// state taken before the change, so a point costs one killed CLI and one recovery.

import { describe, it, expect, onTestFinished } from 'vitest';
import { simMounted } from '../sim-mounts.ts';
import { simPool, writeManifest, type DeviceDraft, type ManifestDraft, type Size } from '../builders/manifest.ts';
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { BIN } from './cli-harness.ts';
import * as api from '../../src/api/index.ts';
import { doctorCommand } from '../../src/cli/commands/doctor-command.ts';
import { poolThinIds } from './pool-thin-ids.ts';
import { buildTar } from '../layers/tar-builder.ts';

interface Spec {
  layer: string;
  d1Size: Size;
  dataSize: Size;
  withD2: boolean;
}

const BEFORE: Spec = { layer: 'a', d1Size: '128M', dataSize: '1G', withD2: true };

function manifest(work: string, s: Spec): ManifestDraft {
  const devices: Record<string, DeviceDraft> = { d1: { layer: s.layer, size: s.d1Size, state: 'mounted', mountpoint: `${work}/mnt/d1` } };
  if (s.withD2) devices.d2 = { layer: s.layer, state: 'mounted', mountpoint: `${work}/mnt/d2` };
  return {
    pool: simPool('walk', { data: { file: 'data.img', size: s.dataSize }, baseSize: '128M' }),
    layers: { a: { source: 'a.tar' }, b: { source: 'b.tar' } },
    devices,
  };
}

interface Scenario {
  name: string;
  after: Partial<Spec>;
  /** The op kinds the change runs: each is killed on both sides of its first step. */
  ops: string[];
  /** Kill at every boundary inside these ops' steps, not only both sides of the first. */
  everyBoundaryOf?: string[];
  /** Steps after which a SIGINT stops the run. */
  sigint: number[];
  /** d1 keeps the file written in it before the change (false: the change deletes its data by design). */
  keepsData: boolean;
}

const SCENARIOS: Scenario[] = [
  {
    name: 'a layer change',
    after: { layer: 'b' },
    ops: ['fs.unmount', 'thin.delete', 'snap.create', 'thin.activate', 'fs.mount'],
    sigint: [2, 6],
    keepsData: false,
  },
  { name: "a device's raised size", after: { d1Size: '256M' }, ops: ['thin.resize', 'fs.grow'], sigint: [1], keepsData: true },
  { name: 'a pool grow', after: { dataSize: '2G' }, ops: ['pool.grow'], everyBoundaryOf: ['pool.grow'], sigint: [], keepsData: true },
  { name: "a device's removal", after: { withD2: false }, ops: ['fs.unmount', 'thin.delete'], sigint: [1], keepsData: true },
];

interface Boundary {
  k: number;
  label: string;
  op: string | null;
}

/** Every boundary of one run, from THINLAYER_CRASH_TRACE=all; `op` is the step under way. */
function traceBoundaries(stderr: string): Boundary[] {
  const out: Boundary[] = [];
  let op: string | null = null;
  for (const line of stderr.split('\n')) {
    const m = /^boundary (\d+): (.*)$/.exec(line);
    if (!m) continue;
    const intent = /^before append step\.intent (\S+)/.exec(m[2]);
    if (intent) op = intent[1];
    out.push({ k: Number(m[1]), label: m[2], op });
    if (/^after append step\.(done|failed) /.test(m[2])) op = null;
  }
  return out;
}

/** Both sides of each op's first step in doubt, every boundary of the ops asked for, and the desired state recorded. */
function sample(all: Boundary[], ops: string[], everyBoundaryOf: string[]): number[] {
  const chosen = new Set<number>();
  const desiredSet = all.find((b) => b.label === 'after append desired.set');
  if (desiredSet) chosen.add(desiredSet.k);
  for (const op of ops) {
    const first = all.findIndex((b) => b.op === op && b.label.startsWith('after append step.intent'));
    expect(first, `the change runs ${op}`).toBeGreaterThanOrEqual(0);
    chosen.add(all[first].k);
    const outcome = all.slice(first).find((b) => /^before append step\.(done|failed)/.test(b.label))!;
    chosen.add(outcome.k);
    if (everyBoundaryOf.includes(op)) for (const b of all.slice(first, all.indexOf(outcome) + 1)) chosen.add(b.k);
  }
  return [...chosen].sort((a, b) => a - b);
}

async function runCli(run: (out: Writable, err: Writable) => Promise<number>): Promise<{ code: number; out: string }> {
  let out = '';
  const sink = (into: (c: string) => void) => new Writable({ write: (c, _e, done) => (into(String(c)), done()) });
  const code = await run(
    sink((c) => (out += c)),
    sink(() => undefined),
  );
  return { code, out };
}

async function ownedThinIds(stateDir: string): Promise<number[]> {
  const s = await api.Session.open({ stateDir, backend: 'sim', reporter: { notify() {} }, mutate: false, command: 'check' });
  try {
    return Object.values(s.state.things)
      .map((t) => t.thinId)
      .sort((a, b) => a - b);
  } finally {
    await s.close();
  }
}

/**
 * One directory the runs work in, at the same path each time (the sim's mounts and the manifest
 * name it), and a copy of it as it was after the first apply, put back before each run.
 */
function workspace(scenario: Scenario) {
  const root = mkdtempSync(join(tmpdir(), 'thinlayer-change-walk-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  const work = join(root, 'work');
  const saved = join(root, 'saved');
  const stateDir = join(work, 'state');
  const before = join(work, 'before.yaml');
  const after = join(work, 'after.yaml');
  const opts = { stateDir, backend: 'sim' as const, yes: true };
  const restore = () => {
    rmSync(work, { recursive: true, force: true });
    execFileSync('cp', ['-a', saved, work]);
  };
  const prepare = async () => {
    mkdirSync(join(work, 'mnt'), { recursive: true });
    for (const n of ['a', 'b']) writeFileSync(join(work, `${n}.tar`), buildTar([{ name: `marker-${n}`, content: `layer ${n}\n` }]));
    writeManifest(before, manifest(work, BEFORE));
    writeManifest(after, manifest(work, { ...BEFORE, ...scenario.after }));
    await api.apply(before, opts);
    writeFileSync(simMounted(stateDir, join(work, 'mnt', 'd1'), 'kept.txt'), 'written before the change\n');
    execFileSync('cp', ['-a', work, saved]);
  };
  const cli = (env: Record<string, string>) =>
    spawnSync(process.execPath, [BIN, 'apply', '-f', after, '--yes', '-q', '--state-dir', stateDir, '--backend', 'sim'], {
      encoding: 'utf8',
      env: { ...process.env, ...env, THINLAYER_LOCK_WAIT_MS: '10000' },
      timeout: 60_000,
    });
  return { work, stateDir, after, opts, restore, prepare, cli };
}

/** Runs the change and sends SIGINT once the progress shows step `n` under way. */
function interruptAt(ws: ReturnType<typeof workspace>, n: number): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'apply', '-f', ws.after, '--yes', '--state-dir', ws.stateDir, '--backend', 'sim'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, THINLAYER_LOCK_WAIT_MS: '10000' },
    });
    let text = '';
    let sent = false;
    const check = (c: Buffer) => {
      text += String(c);
      if (!sent && new RegExp(`^\\[${n}/\\d+\\]`, 'm').test(text)) {
        sent = true;
        child.kill('SIGINT');
      }
    };
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: text }));
  });
}

/** Recovery: the same apply again, and everything the walk promises after it. */
async function expectRecovered(ws: ReturnType<typeof workspace>, scenario: Scenario, what: string) {
  const recovered = await api.apply(ws.after, ws.opts).catch((e) => {
    throw new Error(`apply after ${what} failed: ${e.message}`);
  });
  expect(recovered.outcome, what).toBe('converged');
  expect((await api.planFor(ws.after, ws.opts)).steps, `plan after recovery from ${what}`).toEqual([]);
  const want = { ...BEFORE, ...scenario.after };
  const status = await api.status(ws.opts);
  expect(status.devices.map((d) => d.name)).toEqual(want.withD2 ? ['d1', 'd2'] : ['d1']);
  expect(status.unwanted, what).toEqual([]);
  for (const d of status.devices) {
    expect([d.state, d.actualLayer, d.layerDrift], `${d.name} after ${what}`).toEqual(['mounted', want.layer, false]);
    const mnt = simMounted(ws.stateDir, join(ws.work, 'mnt', d.name));
    expect(readFileSync(join(mnt, `marker-${want.layer}`), 'utf8'), `${d.name} holds layer ${want.layer}'s files after ${what}`).toBe(`layer ${want.layer}\n`);
    expect(existsSync(join(mnt, `marker-${want.layer === 'a' ? 'b' : 'a'}`)), `${d.name} holds no other layer's files after ${what}`).toBe(false);
  }
  const d1 = status.devices.find((d) => d.name === 'd1')!;
  if (scenario.after.d1Size) expect(d1.sizeBytes, what).toBe(256 << 20);
  if (scenario.after.dataSize) expect(status.pool?.data?.totalBytes, what).toBe(2 * 1024 ** 3);
  expect(existsSync(simMounted(ws.stateDir, join(ws.work, 'mnt', 'd1'), 'kept.txt')), `d1's data after ${what}`).toBe(scenario.keepsData);
  if (!want.withD2) expect(existsSync(simMounted(ws.stateDir, join(ws.work, 'mnt', 'd2'), 'marker-a')), what).toBe(false);
  expect(await poolThinIds(ws.stateDir), `thin ids in the pool after ${what}`).toEqual(await ownedThinIds(ws.stateDir));
  const doctor = await runCli((out, err) => doctorCommand({ stateDir: ws.stateDir, backend: 'sim', json: true, out, err }));
  const findings = (JSON.parse(doctor.out) as { findings: Array<{ severity: string }> }).findings;
  expect(
    findings.filter((f) => f.severity !== 'info'),
    `doctor --json after ${what}`,
  ).toEqual([]);
  expect(doctor.code).toBe(0);
}

describe('crash walk over changes to what exists', () => {
  for (const scenario of SCENARIOS) {
    it(`recovers ${scenario.name} from SIGKILL on both sides of each op's intent and outcome, and from SIGINT`, { timeout: 180_000 }, async () => {
      const ws = workspace(scenario);
      await ws.prepare();
      const traced = ws.cli({ THINLAYER_CRASH_TRACE: 'all' });
      expect(traced.status, traced.stderr).toBe(0);
      const all = traceBoundaries(traced.stderr);
      const points = sample(all, scenario.ops, scenario.everyBoundaryOf ?? []);
      expect(points.length).toBeGreaterThanOrEqual(scenario.ops.length * 2);
      for (const k of points) {
        ws.restore();
        const crashed = ws.cli({ THINLAYER_CRASH_POINT: String(k) });
        const what = `crash point ${k} (${all[k - 1].label}${all[k - 1].op ? ` in ${all[k - 1].op}` : ''})`;
        expect(crashed.signal, `${what} was reached`).toBe('SIGKILL');
        await expectRecovered(ws, scenario, what);
      }
      for (const n of scenario.sigint) {
        ws.restore();
        const stopped = await interruptAt(ws, n);
        expect(stopped.code, stopped.stdout).toBe(130);
        expect(stopped.stdout).toMatch(/^Interrupted after \d+ of \d+ steps; run the same command again to finish$/m);
        await expectRecovered(ws, scenario, `SIGINT at step ${n}`);
      }
    });
  }
});
