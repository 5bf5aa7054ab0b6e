// Issue points on the real kernel: a missing data file, then put back (everything comes back), a
// mounted device grown online by a raised size (its thin table reloaded, then resize2fs), with df
// inside the device showing the new size, and a layer change stopped by SIGINT after a few steps,
// which the same apply finishes: every device then holds the new layer's files.

import { describe, it, expect, beforeAll } from 'vitest';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as api from '../../src/api/index.ts';
import { requireKernel, kernelBox } from './kernel-harness.ts';
import { BIN, type CliResult } from './cli-harness.ts';
import { missingDataFileComesBack } from '../scenarios/missing-backing.ts';
import { buildTar } from '../layers/tar-builder.ts';
import { simPool, writeManifest, type DeviceDraft, type ManifestDraft, type Size } from '../builders/manifest.ts';

beforeAll(requireKernel);

const MiB = 1024 * 1024;

describe('changes and repairs on the real kernel', () => {
  it('a missing data file is reported as missing and put back; then every device and its files come back', () => {
    const b = kernelBox();
    const run = (args: string[]): CliResult => {
      const r = spawnSync(process.execPath, [BIN, ...args, '--state-dir', b.stateDir, '--backend', 'kernel'], { encoding: 'utf8', timeout: 300_000 });
      return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
    };
    missingDataFileComesBack(run, b);
  });

  it('grows a mounted device and its ext4 filesystem online for a raised size', async () => {
    const b = kernelBox();
    const file = join(b.root, 'grow.yaml');
    const manifest = (size: Size): ManifestDraft => ({
      pool: simPool('kgrow'),
      layers: { empty: {} },
      devices: {
        app: { layer: 'empty', size, mountpoint: `${b.mnt}/app` },
        side: { layer: 'empty', state: 'activated', size },
      },
    });
    writeManifest(file, manifest('256M'));
    const opts = { stateDir: b.stateDir, backend: 'kernel' as const };
    await api.apply(file, { ...opts, yes: true });
    const where = join(b.mnt, 'app');
    writeFileSync(join(where, 'kept'), 'written before the grow');
    const fsBytes = () => {
      const s = statfsSync(where);
      return s.blocks * s.bsize;
    };
    const before = fsBytes();
    expect(before).toBeLessThan(256 * MiB);
    const device = (await api.status(opts)).devices.find((d) => d.name === 'app')!;

    writeManifest(file, manifest('1G'));
    const plan = await api.planFor(file, opts);
    expect(plan.steps.map((s) => `${s.op} ${s.target}`)).toEqual([
      'thin.resize device:app',
      'fs.grow device:app',
      'thin.resize device:side',
      'fs.grow device:side',
    ]);
    await api.apply(file, opts);
    const after = fsBytes();
    expect(after).toBeGreaterThan(768 * MiB);
    expect(readFileSync(join(where, 'kept'), 'utf8')).toBe('written before the grow');
    // The activated device's ext4 was grown too (mounted privately for it, and unmounted).
    const side = (await api.status(opts)).devices.find((d) => d.name === 'side')!;
    expect(side.state).toBe('activated');
    const header = execFileSync('dumpe2fs', ['-h', side.devPath!], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const blocks = Number(/^Block count:\s+(\d+)/m.exec(header)![1]);
    const blockSize = Number(/^Block size:\s+(\d+)/m.exec(header)![1]);
    expect(blocks * blockSize).toBe(1024 * MiB);
    const now = (await api.status(opts)).devices.find((d) => d.name === 'app')!;
    expect(now).toMatchObject({ state: 'mounted', thinId: device.thinId, devPath: device.devPath });
    expect((await api.planFor(file, opts)).steps).toEqual([]);

    // A lowered size is refused, naming the field.
    writeManifest(file, manifest('512M'));
    await expect(api.apply(file, opts)).rejects.toMatchObject({ exitCode: 2, detail: { path: 'devices.app.size' } });
  });

  it('finishes a layer change a SIGINT stopped after a few steps: the same apply again puts every device on the new layer', async () => {
    const b = kernelBox();
    for (const n of ['a', 'b']) writeFileSync(join(b.root, `${n}.tar`), buildTar([{ name: `marker-${n}`, content: `layer ${n}\n` }]));
    const names = ['d1', 'd2', 'd3', 'd4'];
    const file = join(b.root, 'layers.yaml');
    const manifest = (layer: string): ManifestDraft => ({
      pool: simPool('klayer', { baseSize: '128M' }),
      layers: { a: { source: 'a.tar' }, b: { source: 'b.tar' } },
      devices: Object.fromEntries(names.map((d): [string, DeviceDraft] => [d, { layer, state: 'mounted', mountpoint: `${b.mnt}/${d}` }])),
    });
    writeManifest(file, manifest('a'));
    const opts = { stateDir: b.stateDir, backend: 'kernel' as const };
    await api.apply(file, { ...opts, yes: true });
    for (const d of names) expect(readFileSync(join(b.mnt, d, 'marker-a'), 'utf8'), d).toBe('layer a\n');

    // The CLI, stopped with SIGINT once its third step (of five a device) is under way.
    writeManifest(file, manifest('b'));
    const stopped = await new Promise<{ code: number | null; text: string }>((resolve, reject) => {
      const child = spawn(process.execPath, [BIN, 'apply', '-f', file, '--yes', '--state-dir', b.stateDir, '--backend', 'kernel'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let text = '';
      let sent = false;
      const check = (c: Buffer) => {
        text += String(c);
        if (!sent && /^\[3\/\d+\]/m.test(text)) {
          sent = true;
          child.kill('SIGINT');
        }
      };
      child.stdout.on('data', check);
      child.stderr.on('data', check);
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, text }));
    });
    expect(stopped.code, stopped.text).toBe(130);
    expect(stopped.text).toMatch(/^Interrupted after \d+ of \d+ steps; run the same command again to finish$/m);

    // Most devices are still snapshots of a: status says so, and the next plan replaces them.
    const half = await api.status(opts);
    const onA = half.devices.filter((d) => d.actualLayer === 'a');
    expect(onA.length).toBeGreaterThan(0);
    for (const d of onA) expect(d.layerDrift, d.name).toBe(true);
    const replaced = (await api.planFor(file, opts)).steps
      .filter((s) => s.op === 'thin.delete' && s.target.startsWith('device:'))
      .map((s) => s.target.slice('device:'.length));
    expect(replaced.sort()).toEqual(onA.map((d) => d.name).sort());

    const again = spawnSync(process.execPath, [BIN, 'apply', '-f', file, '--yes', '-q', '--state-dir', b.stateDir, '--backend', 'kernel'], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    expect(again.status, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^apply: converged after \d+ steps?/m);
    for (const d of names) {
      expect(readFileSync(join(b.mnt, d, 'marker-b'), 'utf8'), d).toBe('layer b\n');
      expect(existsSync(join(b.mnt, d, 'marker-a')), d).toBe(false);
    }
    expect((await api.planFor(file, opts)).steps).toEqual([]);
    const doctor = spawnSync(process.execPath, [BIN, 'doctor', '--json', '--state-dir', b.stateDir, '--backend', 'kernel'], {
      encoding: 'utf8',
      timeout: 300_000,
    });
    expect(doctor.status, doctor.stdout).toBe(0);
    expect(JSON.parse(doctor.stdout).findings.filter((f: { severity: string }) => f.severity !== 'info')).toEqual([]);
  });
});
