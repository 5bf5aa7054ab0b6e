// The crash walk: for every k, `thinlayer apply` of the example manifest is killed with SIGKILL at
// the k-th boundary around a kernel mutation or event append (THINLAYER_CRASH_POINT=k). After each
// crash, apply must converge, a further apply must be a no-op, no thin id may be leaked, data
// written before the crash must still be there, and every intent the crash left is settled:
// `doctor --json` has no warning or error and gc is not blocked.
//
// A manifest with dozens of mounted devices passes too many boundaries (about 700) to walk every
// one in the test suite's time: its walk is a sample that covers every op kind. Each op is killed
// where its step is in doubt, in its first step: just after its intent is durable and just before
// its outcome is appended (every kernel call of the step done); so is the middle one of its dozens
// of mounts; and the desired state recorded before any step. (The example's walk takes every boundary.)

import { describe, it, expect } from 'vitest';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { sandbox, webManifest } from './cli-harness.ts';
import { simPool, withDevices, withoutDevices, type DeviceDraft, type ManifestDraft } from '../builders/manifest.ts';
import * as api from '../../src/api/index.ts';
import { doctorCommand } from '../../src/cli/commands/doctor-command.ts';
import { gcCommand } from '../../src/cli/commands/gc-command.ts';
import { poolThinIds } from './pool-thin-ids.ts';
import { buildTar } from '../layers/tar-builder.ts';
import { simMounted } from '../sim-mounts.ts';

/** Writes the large manifest and its layer archive into the box. */
function writeLarge(box: ReturnType<typeof sandbox>): string {
  writeFileSync(
    join(box.root, 'php.tar'),
    buildTar([
      { name: 'srv/', type: 'dir' },
      { name: 'srv/index.php', content: '<?php echo 1;\n' },
    ]),
  );
  return box.writeManifest('big.yaml', largeManifest(box.mnt));
}

/** The walk's bound: the example apply passes far fewer boundaries than this; reaching it is a failure. */
const MAX_POINTS = 400;

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

/** Recovery runs in this process through the library API (the same code the CLI runs): only the
 *  crashing run needs a process of its own, to be killed. */
async function checkConverged(box: ReturnType<typeof sandbox>, file: string, k: number) {
  const opts = { stateDir: box.stateDir, backend: 'sim' as const, yes: true };
  const recovered = await api.apply(file, opts).catch((e) => {
    throw new Error(`apply after crash point ${k} failed: ${e.message}`);
  });
  expect(recovered.outcome).toBe('converged');
  expect((await api.planFor(file, opts)).steps, `plan after recovery from crash point ${k}`).toEqual([]);
  const status = await api.status(opts);
  for (const d of status.devices) expect(d.state, `device ${d.name} after crash point ${k}`).toBe(d.desired);
  expect(await poolThinIds(box.stateDir), `thin ids in the pool after crash point ${k}`).toEqual(await ownedThinIds(box.stateDir));
  const doctor = await runCli((out, err) => doctorCommand({ stateDir: box.stateDir, backend: 'sim', json: true, out, err }));
  const report = JSON.parse(doctor.out) as { findings: Array<{ code: string; severity: string; message: string }> };
  const bad = report.findings.filter((f) => f.severity !== 'info');
  expect(bad, `doctor --json after recovery from crash point ${k}`).toEqual([]);
  expect(doctor.code).toBe(0);
  const gc = await runCli((out, err) => gcCommand({ stateDir: box.stateDir, backend: 'sim', json: true, yes: false, out, err }));
  expect(JSON.parse(gc.out).blockers, `gc after recovery from crash point ${k}`).toEqual([]);
}

/** Runs a CLI half in this process, with its output collected. */
async function runCli(run: (out: Writable, err: Writable) => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  const chunks = { out: '', err: '' };
  const sink = (key: 'out' | 'err') =>
    new Writable({
      write: (c, _e, done) => {
        chunks[key] += String(c);
        done();
      },
    });
  const code = await run(sink('out'), sink('err'));
  return { code, ...chunks };
}

/** Dozens of mounted devices on a three-layer chain (its top layer with content), and a few only activated. */
function largeManifest(mnt: string): ManifestDraft {
  const devices = Array.from({ length: 24 }, (_, i): [string, DeviceDraft] => [
    `d${i + 1}`,
    { layer: i % 3 === 0 ? 'php' : 'apache', state: 'mounted', mountpoint: `${mnt}/d${i + 1}` },
  ]);
  const activated = Array.from({ length: 2 }, (_, i): [string, DeviceDraft] => [`a${i + 1}`, { layer: 'fedora', state: 'activated' }]);
  return {
    pool: simPool('big', { data: { file: 'data.img', size: '4G' }, baseSize: '128M' }),
    layers: { fedora: {}, apache: { parent: 'fedora' }, php: { parent: 'apache', source: 'php.tar' } },
    devices: Object.fromEntries([...devices, ...activated]),
  };
}

interface Boundary {
  k: number;
  label: string;
  /** The op of the step under way at this boundary (from its intent's append to its outcome's), or null between steps. */
  op: string | null;
}

/** Every boundary of one uninterrupted run, from THINLAYER_CRASH_TRACE=all. */
function traceBoundaries(stderr: string): Boundary[] {
  const out: Boundary[] = [];
  let op: string | null = null;
  for (const line of stderr.split('\n')) {
    const m = /^boundary (\d+): (.*)$/.exec(line);
    if (!m) continue;
    const label = m[2];
    const intent = /^before append step\.intent (\S+)/.exec(label);
    if (intent) op = intent[1];
    out.push({ k: Number(m[1]), label, op });
    if (/^after append step\.(done|failed) /.test(label)) op = null;
  }
  return out;
}

/**
 * The boundaries where a step is in doubt, for each op kind: in its first step, just after its
 * intent is durable (nothing done yet) and just before its outcome is appended (all done, nothing
 * recorded); the same in the middle step of the op that runs most (a mount among dozens of mounted
 * devices); and the desired state recorded, before any step.
 */
function sampleBoundaries(all: Boundary[]): { sample: number[]; ops: Set<string> } {
  const steps = new Map<string, Boundary[][]>(); // op -> its steps' boundaries
  const chosen = new Set<number>();
  for (const b of all) {
    if (b.op === null) {
      if (b.label === 'after append desired.set') chosen.add(b.k);
      continue;
    }
    const list = steps.get(b.op) ?? steps.set(b.op, []).get(b.op)!;
    if (b.label.startsWith('before append step.intent')) list.push([]);
    list[list.length - 1].push(b);
  }
  const inDoubt = (step: Boundary[]) => [
    step.find((b) => b.label.startsWith('after append step.intent'))!.k,
    step.find((b) => /^before append step\.(done|failed)/.test(b.label))!.k,
  ];
  for (const list of steps.values()) for (const k of inDoubt(list[0])) chosen.add(k);
  const busiest = [...steps.values()].sort((a, b) => b.length - a.length)[0];
  for (const k of inDoubt(busiest[Math.floor(busiest.length / 2)])) chosen.add(k);
  return { sample: [...chosen].sort((a, b) => a - b), ops: new Set(steps.keys()) };
}

describe('crash walk', () => {
  it('recovers from a SIGKILL at every boundary of a first apply of the example manifest', { timeout: 1_800_000 }, async () => {
    let k = 1;
    for (; k <= MAX_POINTS; k++) {
      // A fresh state dir and mountpoints for each k: nothing of one crash leaks into the next.
      const box = sandbox();
      try {
        const file = box.writeManifest('web.yaml', webManifest(box.mnt));
        const crashed = box.run(['apply', '-f', file, '--yes', '-q'], { THINLAYER_CRASH_POINT: String(k) });
        if (crashed.signal !== 'SIGKILL') {
          // Past the last boundary: the run completed without reaching k.
          expect(crashed.code, crashed.stderr).toBe(0);
          break;
        }
        await checkConverged(box, file, k);
      } finally {
        box.cleanup();
      }
    }
    expect(k).toBeGreaterThan(20);
    expect(k).toBeLessThan(MAX_POINTS);
  });

  it('recovers from a SIGKILL at sampled boundaries of every op kind in a first apply of dozens of mounted devices', { timeout: 1_800_000 }, async () => {
    const traced = sandbox();
    let all: Boundary[];
    try {
      const file = writeLarge(traced);
      const run = traced.run(['apply', '-f', file, '--yes', '-q'], { THINLAYER_CRASH_TRACE: 'all' });
      expect(run.code, run.stderr).toBe(0);
      all = traceBoundaries(run.stderr);
    } finally {
      traced.cleanup();
    }
    const { sample, ops } = sampleBoundaries(all);
    // Every op the apply runs is in the sample, each at every boundary of one of its steps.
    for (const op of [
      'pool.files',
      'pool.attach',
      'pool.activate',
      'thin.create',
      'snap.create',
      'thin.activate',
      'thin.deactivate',
      'fs.mkfs',
      'fs.mount',
      'layer.commit',
    ]) {
      expect(ops, `the large apply runs ${op}`).toContain(op);
    }
    for (const op of ops) expect(sample.filter((k) => all[k - 1].op === op).length, `boundaries sampled in ${op}`).toBeGreaterThanOrEqual(2);
    expect(all.length).toBeGreaterThan(250);
    for (const k of sample) {
      const box = sandbox();
      try {
        const file = writeLarge(box);
        const crashed = box.run(['apply', '-f', file, '--yes', '-q'], { THINLAYER_CRASH_POINT: String(k) });
        expect(crashed.signal, `crash point ${k} (${all[k - 1].label}) was reached`).toBe('SIGKILL');
        await checkConverged(box, file, k);
      } finally {
        box.cleanup();
      }
    }
  });

  it('keeps data written before a crash while the manifest drops one device and adds another', { timeout: 1_800_000 }, async () => {
    let k = 1;
    for (; k <= MAX_POINTS; k++) {
      const box = sandbox();
      try {
        const first = box.writeManifest('web.yaml', webManifest(box.mnt));
        const second = box.writeManifest(
          'changed.yaml',
          withDevices(withoutDevices(webManifest(box.mnt), 'web2'), { web3: { layer: 'fedora', state: 'mounted', mountpoint: `${box.mnt}/web3` } }),
        );
        await api.apply(first, { stateDir: box.stateDir, backend: 'sim', yes: true });
        writeFileSync(simMounted(box.stateDir, join(box.mnt, 'web1'), 'committed.txt'), `written before crash point ${k}\n`);
        const crashed = box.run(['apply', '-f', second, '--yes', '-q'], { THINLAYER_CRASH_POINT: String(k) });
        if (crashed.signal !== 'SIGKILL') {
          expect(crashed.code, crashed.stderr).toBe(0);
          break;
        }
        await checkConverged(box, second, k);
        expect(readFileSync(simMounted(box.stateDir, join(box.mnt, 'web1'), 'committed.txt'), 'utf8')).toBe(`written before crash point ${k}\n`);
      } finally {
        box.cleanup();
      }
    }
    expect(k).toBeGreaterThan(10);
    expect(k).toBeLessThan(MAX_POINTS);
  });
});
