// What a device IS, against what is desired: a change an interrupted run left half done (a layer
// change, here) is planned again by the next run whatever the manifest's digest, status shows each
// device's actual layer with (!) where it differs, and doctor reports the drift (an error: exit 1)
// and the interrupted run (a warning) until the same command is run again.

import { describe, it, expect, onTestFinished } from 'vitest';
import { simMounted } from '../sim-mounts.ts';
import { simPool, writeManifest, type DeviceDraft } from '../builders/manifest.ts';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as api from '../../src/api/index.ts';
import { doctorCommand } from '../../src/cli/commands/doctor-command.ts';
import { renderStatus } from '../../src/cli/render.ts';
import { buildTar } from '../layers/tar-builder.ts';
import { poolThinIds } from './pool-thin-ids.ts';
import { BIN } from './cli-harness.ts';

const DEVICES = 8;

function box() {
  const root = mkdtempSync(join(tmpdir(), 'thinlayer-drift-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  for (const n of ['a', 'b']) writeFileSync(join(root, `${n}.tar`), buildTar([{ name: `marker-${n}`, content: `layer ${n}\n` }]));
  const write = (layer: string) => {
    const devices = Array.from({ length: DEVICES }, (_, i): [string, DeviceDraft] => [
      `d${i + 1}`,
      { layer, state: 'mounted', mountpoint: `${root}/mnt/d${i + 1}` },
    ]);
    return writeManifest(join(root, `on-${layer}.yaml`), {
      pool: simPool('drift', { data: { file: 'data.img', size: '1G' }, baseSize: '128M' }),
      layers: { a: { source: 'a.tar' }, b: { source: 'b.tar' } },
      devices: Object.fromEntries(devices),
    });
  };
  return { root, stateDir: join(root, 'state'), write, mnt: (d: string) => simMounted(join(root, 'state'), join(root, 'mnt', d)) };
}

async function doctorJson(
  stateDir: string,
): Promise<{ code: number; findings: Array<{ code: string; severity: string; subject: string; message: string; repair: string | null }> }> {
  let out = '';
  const sink = (into: (c: string) => void) => new Writable({ write: (c, _e, done) => (into(String(c)), done()) });
  const code = await doctorCommand({ stateDir, backend: 'sim', json: true, out: sink((c) => (out += c)), err: sink(() => undefined) });
  return { code, findings: JSON.parse(out).findings };
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

describe('drift: what a device is, against what is desired', () => {
  it('plans an interrupted layer change again, shows it in status and doctor, and finishes it on the same command', { timeout: 60_000 }, async () => {
    const b = box();
    const opts = { stateDir: b.stateDir, backend: 'sim' as const, yes: true };
    await api.apply(b.write('a'), opts);
    const onB = b.write('b');
    // Interrupted (as SIGINT does) after a few steps of the replacement: some devices are on b, most still on a.
    const stop = new AbortController();
    let done = 0;
    const first = await api.apply(onB, { ...opts, signal: stop.signal, reporter: { notify: (m) => m.code === 'step.done' && ++done === 7 && stop.abort() } });
    expect(first.outcome).toBe('interrupted');

    const stale = Array.from({ length: DEVICES }, (_, i) => `d${i + 1}`).filter(
      (d) => existsSync(join(b.mnt(d), 'marker-a')) || !existsSync(join(b.mnt(d), 'marker-b')),
    );
    expect(stale.length).toBeGreaterThan(DEVICES / 2);

    // The manifest's digest is the recorded one: the plan still replaces every device that is not on b.
    const plan = await api.planFor(onB, opts);
    const replaced = plan.steps.filter((s) => s.op === 'thin.delete' && s.target.startsWith('device:')).map((s) => s.target.slice('device:'.length));
    const onA = (await api.status(opts)).devices.filter((d) => d.actualLayer === 'a').map((d) => d.name);
    expect(onA.length).toBeGreaterThan(0);
    expect(replaced.sort()).toEqual([...onA].sort());
    expect(plan.impact).toBe('destroy');

    // status: the actual layer, flagged where it is not the desired one.
    const status = await api.status(opts);
    for (const d of status.devices) {
      expect(d.layer, d.name).toBe('b');
      expect(d.layerDrift, d.name).toBe(d.actualLayer !== null && d.actualLayer !== 'b');
    }
    const text = renderStatus(status);
    expect(text).toMatch(/^d\S*\s.*\ba \(!\)/m);

    // doctor: the drift (an error, exit 1) for each device still on a, and the interrupted run.
    const sick = await doctorJson(b.stateDir);
    expect(sick.code).toBe(1);
    const drift = sick.findings.filter((f) => f.code === 'drift' && /layer a\b.*desired.*layer b/.test(f.message));
    expect(drift.map((f) => f.subject).sort()).toEqual(onA.map((d) => `device:${d}`).sort());
    for (const f of drift) expect(f).toMatchObject({ severity: 'error', repair: expect.stringContaining('thinlayer apply') });
    expect(sick.findings.filter((f) => f.code === 'run.interrupted')).toEqual([
      expect.objectContaining({ severity: 'warning', repair: expect.stringContaining('thinlayer apply') }),
    ]);

    // The same command finishes it: every device holds b's files and only b's.
    const again = await api.apply(onB, opts);
    expect(again.outcome).toBe('converged');
    expect(again.steps).toBeGreaterThan(0);
    for (let i = 1; i <= DEVICES; i++) {
      expect(readFileSync(join(b.mnt(`d${i}`), 'marker-b'), 'utf8'), `d${i}`).toBe('layer b\n');
      expect(existsSync(join(b.mnt(`d${i}`), 'marker-a')), `d${i}`).toBe(false);
    }
    expect((await api.planFor(onB, opts)).steps).toEqual([]);
    const healthy = await doctorJson(b.stateDir);
    expect(healthy.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(healthy.code).toBe(0);
    for (const d of (await api.status(opts)).devices) expect([d.actualLayer, d.layerDrift], d.name).toEqual(['b', false]);
    expect(await poolThinIds(b.stateDir)).toEqual(await ownedThinIds(b.stateDir));
  });

  it('doctor reports the devices a first apply killed with SIGKILL never made, and the run it left unfinished', { timeout: 60_000 }, async () => {
    const cli = (b: ReturnType<typeof box>, env: Record<string, string>) =>
      spawnSync(process.execPath, [BIN, 'apply', '-f', b.write('a'), '--yes', '-q', '--state-dir', b.stateDir, '--backend', 'sim'], {
        encoding: 'utf8',
        env: { ...process.env, ...env },
        timeout: 60_000,
      });
    // Killed between two steps, once the fourth device is mounted: the rest were never made.
    const traced = cli(box(), { THINLAYER_CRASH_TRACE: 'all' });
    const boundaries = [...traced.stderr.matchAll(/^boundary (\d+): after append step\.done fs\.mount/gm)].map((m) => Number(m[1]));
    expect(boundaries.length).toBe(DEVICES);
    const b = box();
    const opts = { stateDir: b.stateDir, backend: 'sim' as const, yes: true };
    const onA = b.write('a');
    const killed = cli(b, { THINLAYER_CRASH_POINT: String(boundaries[3]) });
    expect(killed.signal).toBe('SIGKILL');

    const absent = (await api.status(opts)).devices.filter((d) => d.state === 'absent').map((d) => d.name);
    expect(absent.length).toBeGreaterThan(0);
    const sick = await doctorJson(b.stateDir);
    expect(sick.code).toBe(1);
    const drift = sick.findings.filter((f) => f.code === 'drift');
    for (const d of absent) expect(drift.find((f) => f.subject === `device:${d}`)?.message, d).toMatch(/is absent.*desired.*mounted/);
    expect(sick.findings.find((f) => f.code === 'run.interrupted')).toMatchObject({ severity: 'warning', message: expect.stringMatching(/never finished/) });

    await api.apply(onA, opts);
    const healthy = await doctorJson(b.stateDir);
    expect(healthy.findings.filter((f) => f.severity !== 'info')).toEqual([]);
    expect(healthy.code).toBe(0);
  });
});
