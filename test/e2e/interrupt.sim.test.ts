// SIGINT and SIGTERM tell the truth: the real CLI, killed with real signals in the middle of a run,
// lets the step under way finish, records the run as interrupted, says how far it got and exits
// 130 or 143; never a stack trace. The same command run again finishes the work, after which
// doctor has nothing to warn about.

import { describe, it, expect, onTestFinished } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from './cli-harness.ts';
import { buildTar } from '../layers/tar-builder.ts';
import * as api from '../../src/api/index.ts';
import { loadManifest } from '../../src/manifest/load.ts';
import { chainLayers } from '../../src/plan/layer-chain.ts';
import { simMounted } from '../sim-mounts.ts';
import { simPool, writeManifest, type DeviceDraft, type LayerDraft, type ManifestDraft } from '../builders/manifest.ts';

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function box() {
  const root = mkdtempSync(join(tmpdir(), 'thinlayer-interrupt-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  const stateDir = join(root, 'state');
  const mnt = join(root, 'mnt');
  mkdirSync(mnt);
  return { root, stateDir, mnt };
}

/** Runs the CLI and sends `signal` once its output matches `when` (progress lines name each step). */
function runAndSignal(args: string[], stateDir: string, when: RegExp, signal: NodeJS.Signals): Promise<Exit & { signalled: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args, '--state-dir', stateDir, '--backend', 'sim'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, THINLAYER_LOCK_WAIT_MS: '10000' },
    });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    const check = () => {
      if (!signalled && (when.test(stderr) || when.test(stdout))) {
        signalled = true;
        child.kill(signal);
      }
    };
    child.stdout.on('data', (c) => {
      stdout += c;
      check();
    });
    child.stderr.on('data', (c) => {
      stderr += c;
      check();
    });
    child.on('error', reject);
    child.on('close', (code, sig) => resolve({ code, signal: sig, stdout, stderr, signalled }));
  });
}

function manifest(mnt: string, devices: number, apacheSource?: string): ManifestDraft {
  const mounted = Array.from({ length: devices }, (_, i): [string, DeviceDraft] => [
    `d${i + 1}`,
    { layer: 'apache', state: 'mounted', mountpoint: `${mnt}/d${i + 1}` },
  ]);
  return {
    pool: simPool('sig', { baseSize: '128M' }),
    layers: { fedora: {}, apache: { parent: 'fedora', source: apacheSource } },
    devices: Object.fromEntries(mounted),
  };
}

function events(stateDir: string): any[] {
  return readFileSync(join(stateDir, 'events.ndjson'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
}

async function expectHealthy(stateDir: string, file: string | null) {
  const opts = { stateDir, backend: 'sim' as const, yes: true };
  if (file) expect((await api.planFor(file, opts)).steps).toEqual([]);
  const status = await api.status(opts);
  expect(status.pendingSteps).toBe(0);
  for (const d of status.devices) expect(d.state, d.name).toBe(d.desired);
}

/** Matches no output: the command runs to its end. */
const NEVER = /(?!)/;
const INTERRUPTED = /^Interrupted after (\d+) of (\d+) steps; run the same command again to finish$/m;

describe('interruptions', () => {
  it('SIGINT during apply: the step under way finishes, the run is recorded as interrupted, exit 130; apply again finishes', { timeout: 120_000 }, async () => {
    const b = box();
    const file = join(b.root, 'm.yaml');
    writeManifest(file, manifest(b.mnt, 12));
    const r = await runAndSignal(['apply', '-f', file, '--yes'], b.stateDir, /^\[8\/\d+\]/m, 'SIGINT');
    expect(r.signalled).toBe(true);
    expect(r.signal).toBeNull(); // it exited by itself, not killed by the signal
    expect(r.code, r.stderr).toBe(130);
    const m = INTERRUPTED.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const [done, planned] = [Number(m![1]), Number(m![2])];
    expect(done).toBeGreaterThanOrEqual(7);
    expect(done).toBeLessThan(planned);
    expect(r.stdout).not.toMatch(/converged/);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);

    const log = events(b.stateDir);
    const finished = log.filter((e) => e.type === 'run.finished');
    expect(finished.at(-1)).toMatchObject({ outcome: 'interrupted', steps: done });
    // Every step begun was recorded: no intent without its outcome.
    const intents = log.filter((e) => e.type === 'step.intent').map((e) => e.stepId);
    const outcomes = new Set(log.filter((e) => e.type === 'step.done' || e.type === 'step.failed').map((e) => e.stepId));
    expect(intents.filter((id) => !outcomes.has(id))).toEqual([]);
    expect(intents.length).toBe(done);

    const again = await runAndSignal(['apply', '-f', file, '--yes', '-q'], b.stateDir, NEVER, 'SIGINT');
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^apply: converged after \d+ steps?/m);
    await expectHealthy(b.stateDir, file);
    for (let i = 1; i <= 12; i++) expect(existsSync(simMounted(b.stateDir, join(b.mnt, `d${i}`), 'lost+found')), `d${i} mounted`).toBe(true);
  });

  it('SIGTERM during destroy: exit 143 with the same account, and destroy again finishes', { timeout: 120_000 }, async () => {
    const b = box();
    const file = join(b.root, 'm.yaml');
    writeManifest(file, manifest(b.mnt, 8));
    expect((await api.apply(file, { stateDir: b.stateDir, backend: 'sim', yes: true })).outcome).toBe('converged');
    const r = await runAndSignal(['destroy', '--yes'], b.stateDir, /^\[3\/\d+\]/m, 'SIGTERM');
    expect(r.signalled).toBe(true);
    expect(r.code, r.stderr).toBe(143);
    expect(r.stdout).toMatch(INTERRUPTED);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(
      events(b.stateDir)
        .filter((e) => e.type === 'run.finished')
        .at(-1).outcome,
    ).toBe('interrupted');
    const again = await runAndSignal(['destroy', '--yes', '--json'], b.stateDir, NEVER, 'SIGTERM');
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).outcome).toBe('converged');
    expect(existsSync(join(b.stateDir, 'data.img'))).toBe(false);
  });

  it('SIGINT during up after a reboot: exit 130, and up again brings everything back', { timeout: 120_000 }, async () => {
    const b = box();
    const file = join(b.root, 'm.yaml');
    writeManifest(file, manifest(b.mnt, 8));
    expect((await api.apply(file, { stateDir: b.stateDir, backend: 'sim', yes: true })).outcome).toBe('converged');
    const reboot = await runAndSignal(['sim', 'reboot'], b.stateDir, NEVER, 'SIGINT');
    expect(reboot.code, reboot.stderr).toBe(0);
    const r = await runAndSignal(['up'], b.stateDir, /^\[4\/\d+\]/m, 'SIGINT');
    expect(r.code, r.stderr).toBe(130);
    expect(r.stdout).toMatch(INTERRUPTED);
    const again = await runAndSignal(['up', '-q'], b.stateDir, NEVER, 'SIGINT');
    expect(again.code, again.stderr).toBe(0);
    await expectHealthy(b.stateDir, file);
  });

  it('SIGINT while a layer is extracted: no stack trace, exit 130, and apply again leaves the layer whole', { timeout: 180_000 }, async () => {
    const b = box();
    // Enough entries that the extraction is still under way when the signal lands (if it is not,
    // the step simply completes: the outcome checked below is the same either way).
    const entries = [
      { name: 'big/', type: 'dir' as const },
      ...Array.from({ length: 24 }, (_, i) => ({ name: `big/f${i}`, content: `file ${i}\n`.padEnd(1 << 20, '.') })),
    ];
    writeFileSync(join(b.root, 'apache.tar'), buildTar(entries));
    const file = join(b.root, 'm.yaml');
    writeManifest(file, manifest(b.mnt, 1, 'apache.tar'));
    const r = await runAndSignal(['apply', '-f', file, '--yes'], b.stateDir, /^ {2}layer apache: .* of /m, 'SIGINT');
    expect(r.signalled, r.stderr).toBe(true);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stdout).toMatch(INTERRUPTED);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    const log = events(b.stateDir);
    expect(log.filter((e) => e.type === 'run.finished').at(-1).outcome).toBe('interrupted');
    const commit = log.filter((e) => e.op === 'layer.commit');
    expect(commit.length).toBeGreaterThan(0);
    expect(['step.done', 'step.failed']).toContain(commit.at(-1).type);

    const again = await runAndSignal(['apply', '-f', file, '--yes', '-q'], b.stateDir, NEVER, 'SIGINT');
    expect(again.code, again.stderr).toBe(0);
    await expectHealthy(b.stateDir, file);
    for (const i of [0, 23]) expect(readFileSync(simMounted(b.stateDir, join(b.mnt, 'd1'), 'big', `f${i}`), 'utf8')).toBe(`file ${i}\n`.padEnd(1 << 20, '.'));
  });

  it('SIGINT during gc --yes: exit 130 with the account, gc again finishes, doctor is clean', { timeout: 120_000 }, async () => {
    const b = box();
    // A chain, so that each layer has content of its own (empty layers with one parent are one device).
    const chain = Array.from({ length: 6 }, (_, i): [string, LayerDraft] => [`l${i + 1}`, { parent: i === 0 ? 'fedora' : `l${i}` }]);
    const file = writeManifest(join(b.root, 'm.yaml'), {
      pool: simPool('gcsig', { baseSize: '128M' }),
      layers: { fedora: {}, ...Object.fromEntries(chain) },
      devices: { d1: { layer: 'l1', state: 'activated' } },
    });
    const opts = { stateDir: b.stateDir, backend: 'sim' as const, yes: true };
    expect((await api.apply(file, opts)).outcome).toBe('converged');
    // A manifest without l2..l6 is recorded but not converged to: their five layers are gc's to delete.
    const desired = await loadManifest(file);
    const next = { ...desired, layers: desired.layers.filter((l) => !/^l[2-6]$/.test(l.name)) };
    const s = await api.Session.open({ stateDir: b.stateDir, backend: 'sim', reporter: { notify() {} }, mutate: true, command: 'test' });
    await s.append([{ type: 'desired.set', manifest: next, content: chainLayers(next), source: 'apply' }]);
    await s.close();
    const r = await runAndSignal(['gc', '--yes'], b.stateDir, /^\[2\/\d+\]/m, 'SIGINT');
    expect(r.signalled, r.stdout + r.stderr).toBe(true);
    expect(r.code, r.stderr).toBe(130);
    expect(r.stdout).toMatch(INTERRUPTED);
    expect(r.stderr).not.toMatch(/internal error|\n\s+at /);
    expect(
      events(b.stateDir)
        .filter((e) => e.type === 'run.finished')
        .at(-1).outcome,
    ).toBe('interrupted');
    const again = await runAndSignal(['gc', '--yes'], b.stateDir, NEVER, 'SIGINT');
    expect(again.code, again.stderr).toBe(0);
    const doctor = await runAndSignal(['doctor', '--json'], b.stateDir, NEVER, 'SIGINT');
    expect(JSON.parse(doctor.stdout).findings.filter((f: { severity: string }) => f.severity !== 'info')).toEqual([]);
    expect((await api.status(opts)).layers.map((l) => l.name).sort()).toEqual(['fedora', 'l1']);
  });

  it('SIGTERM stops watch cleanly: the run under way is recorded, exit 0, no stack trace', { timeout: 120_000 }, async () => {
    const b = box();
    const file = join(b.root, 'm.yaml');
    writeManifest(file, manifest(b.mnt, 8));
    const r = await runAndSignal(['watch', '-f', file, '--interval', '1h'], b.stateDir, /mount device d2/, 'SIGTERM');
    expect(r.signalled, r.stdout + r.stderr).toBe(true);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout + r.stderr).not.toMatch(/internal error|\n\s+at /);
    const log = events(b.stateDir);
    expect(['interrupted', 'converged']).toContain(log.filter((e) => e.type === 'run.finished').at(-1).outcome);
    const intents = log.filter((e) => e.type === 'step.intent').map((e) => e.stepId);
    const outcomes = new Set(log.filter((e) => e.type === 'step.done' || e.type === 'step.failed').map((e) => e.stepId));
    expect(intents.filter((id) => !outcomes.has(id))).toEqual([]);
    const again = await runAndSignal(['up', '-q'], b.stateDir, NEVER, 'SIGINT');
    expect(again.code, again.stderr).toBe(0);
    await expectHealthy(b.stateDir, file);
  });
});
