// What a person reads at an 80-column terminal, through the real CLI on the simulated kernel:
// status, plan, destroy's plan and the watch live view say sizes in IEC units (never a raw byte
// count), cut nothing short (no "…", every path and command whole), and count things (devices,
// layers, the base, the pool) where they summarise, in natural order (d2 before d10).

import { describe, it, expect, onTestFinished } from 'vitest';
import { join } from 'node:path';
import { sandbox, type Sandbox } from '../e2e/cli-harness.ts';
import { simPool, type DeviceDraft, type ManifestDraft } from '../builders/manifest.ts';
import * as api from '../../src/api/index.ts';
import { applyMessage, initialLiveModel, renderLiveView, withStatus } from '../../src/watch/live-view.ts';

const WIDTH = 80;

function manifest(mnt: string): ManifestDraft {
  const devices = Array.from({ length: 12 }, (_, i): [string, DeviceDraft] => [
    `d${i + 1}`,
    i === 0 ? { layer: 'apache', state: 'mounted', mountpoint: `${mnt}/d1`, size: '512M' } : { layer: 'apache', state: 'activated' },
  ]);
  return { pool: simPool('human', { baseSize: '256M' }), layers: { fedora: {}, apache: { parent: 'fedora' } }, devices: Object.fromEntries(devices) };
}

/** A number of six digits or more standing alone: a byte count where a size was meant (run ids and hex digests are not alone). */
const RAW_NUMBER = /(?<![\w.:-])\d{6,}(?![\w.:-])/;

function expectReadable(text: string, what: string): void {
  expect(text, what).not.toMatch(RAW_NUMBER);
  expect(text, what).not.toMatch(/\d bytes\b/);
  expect(text, what).not.toContain('…');
  expect(text, what).not.toMatch(/\(s\)/);
  expect(text, what).not.toMatch(/\b1 steps\b|\b1 devices\b|\b1 layers\b/);
}

/** The device names in the order the text first names them. */
function order(text: string): string[] {
  return [...new Set([...text.matchAll(/\bd(\d+)\b/g)].map((m) => `d${m[1]}`))];
}
const NATURAL = Array.from({ length: 12 }, (_, i) => `d${i + 1}`);

function box(): { b: Sandbox; file: string } {
  const b = sandbox();
  onTestFinished(() => b.cleanup());
  return { b, file: b.writeManifest('m.yaml', manifest(b.mnt)) };
}

describe('output for people at 80 columns', () => {
  it('plan counts the things it creates and says sizes', () => {
    const { b, file } = box();
    const plan = b.run(['plan', '-f', file], { COLUMNS: String(WIDTH) });
    expect(plan.code, plan.stderr).toBe(0);
    expectReadable(plan.stdout, 'plan');
    expect(plan.stdout).toMatch(/^Plan: create 12 devices, 2 layers, the base and the pool \(\d+ steps\)$/m);
    expect(plan.stdout).not.toMatch(/^Plan: \d+ steps/m);
    expect(plan.stdout).toMatch(/grow the filesystem of device d1 to fill its 512 MiB/);
    const applied = b.run(['apply', '-f', file, '--yes', '-q']);
    expect(applied.stdout).toMatch(/^apply: converged after \d+ steps \(run \S+\): created 12 devices, 2 layers, the base and the pool\.$/m);
  });

  it('status says sizes with their base, the /dev/mapper path, and devices in natural order', () => {
    const { b, file } = box();
    expect(b.run(['apply', '-f', file, '--yes', '-q']).code).toBe(0);
    const status = b.run(['status']);
    expect(status.code, status.stderr).toBe(0);
    expectReadable(status.stdout, 'status');
    expect(status.stdout).toMatch(/^ {2}data \S+ [KMG]iB of 2 GiB \(\d+(\.\d)?%\), metadata \S+ [KMG]iB of 64 MiB \(\d+(\.\d)?%\)/m);
    expect(status.stdout).toMatch(/^d1 +apache +mounted +512 MiB +\S+ [KMG]iB \(\d+\.\d%\) +\S+\/d1 +\/dev\/mapper\/\S+d1$/m);
    expect(status.stdout).not.toMatch(/\/dev\/dm-\d/);
    const table = status.stdout.slice(status.stdout.indexOf('DEVICE'));
    expect(order(table)).toEqual(NATURAL);
  });

  it("destroy's plan counts devices, layers, the base and the pool, not steps", () => {
    const { b, file } = box();
    expect(b.run(['apply', '-f', file, '--yes', '-q']).code).toBe(0);
    const refused = b.run(['destroy']);
    expect(refused.code).toBe(2);
    expectReadable(refused.stderr, 'destroy');
    expect(refused.stderr).toMatch(/^Plan: delete 12 devices, 2 layers, the base and the pool \(\d+ steps\)$/m);
    expect(refused.stderr).toMatch(
      /^This deletes 12 devices \(d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11, d12\), 2 layers \(apache, fedora\), the base, the pool and 2 files/m,
    );
    const done = b.run(['destroy', '--yes', '-q']);
    expect(done.stdout).toMatch(/^destroy: converged after \d+ steps \(run \S+\): deleted 12 devices, 2 layers, the base and the pool\.$/m);
  });

  it('the watch live view cuts nothing: the metrics address and the command to run are whole', async () => {
    const { b, file } = box();
    expect(b.run(['apply', '-f', file, '--yes', '-q']).code).toBe(0);
    const view = await api.status({ stateDir: b.stateDir, backend: 'sim' });
    const at = new Date('2026-12-08T03:00:00Z');
    let model = initialLiveModel(file, b.stateDir, 30_000);
    model = applyMessage(model, { code: 'watch.started', file, intervalMs: 30_000, metricsUrl: 'http://127.0.0.1:41234/metrics' }, at);
    model = applyMessage(model, { code: 'watch.run-done', run: 1, durationMs: 900, steps: 1 }, at);
    model = applyMessage(model, { code: 'pool.use-warning', role: 'data', percent: 91.9, level: 90 }, at);
    model = applyMessage(model, { code: 'pool.grown', role: 'data', fromBytes: 2 * 2 ** 30, toBytes: 3 * 2 ** 30 }, at);
    model = applyMessage(model, { code: 'watch.needs-confirmation', file, deletes: ['device:d12'] }, at);
    model = withStatus(model, view);
    const screen = renderLiveView(model, { now: at, width: WIDTH });
    expectReadable(screen, 'live view');
    const lines = screen.split('\n');
    for (const line of lines.filter((l) => !l.startsWith('  thinlayer '))) expect(line.length, line).toBeLessThanOrEqual(WIDTH);
    expect(lines).toContain('metrics http://127.0.0.1:41234/metrics');
    expect(lines).toContain(`  thinlayer apply -f ${file} --yes`);
    expect(screen).toMatch(/^! \d\d:\d\d:\d\d warning: pool data is 91\.9% full/m);
    expect(screen).toContain('pool data grown from 2 GiB to 3 GiB');
    expect(screen).toContain('run 1: 1 step in');
    expect(order(screen.slice(screen.indexOf('DEVICE')))).toEqual(NATURAL);
    expect(screen).toContain(join('/dev/mapper', view.devices[0].dmName ?? '?'));
  });
});
