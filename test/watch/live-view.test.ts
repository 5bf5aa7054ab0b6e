import { describe, expect, it } from 'vitest';
import { applyMessage, initialLiveModel, renderLiveView, withStatus, RECENT_LINES, describeMessage } from '../../src/watch/live-view.ts';
import type { StatusView } from '../../src/app/status-view.ts';
import { WatchOutput } from '../../src/watch/watch-output.ts';
import { PassThrough } from 'node:stream';

const at = new Date('2025-01-02T03:04:05Z');

function status(): StatusView {
  return {
    backend: 'sim',
    stateDir: '/var/lib/thinlayer',
    pool: {
      name: 'demo',
      dmName: 'thinlayer-demo-pool',
      active: true,
      mode: 'rw',
      transactionId: 4,
      data: { used: 81, total: 100, usedBytes: 81 * 65536, totalBytes: 100 * 65536, percent: 81 },
      metadata: { used: 1, total: 100, usedBytes: 4096, totalBytes: 409600, percent: 1 },
      needsCheck: false,
    },
    layers: [],
    devices: [
      {
        name: 'web1',
        layer: 'apache',
        actualLayer: 'apache',
        actualChainId: null,
        layerDrift: false,
        state: 'mounted',
        desired: 'mounted',
        mountpoint: '/run/thinlayer/web1',
        thinId: 3,
        dmName: 'a',
        devPath: '/dev/dm-3',
        stablePath: '/dev/mapper/a',
        sizeBytes: 1 << 30,
        mappedBytes: 1 << 20,
        mappedPercent: 0.1,
      },
      {
        name: 'web2',
        layer: 'apache',
        actualLayer: 'apache',
        actualChainId: null,
        layerDrift: false,
        state: 'created',
        desired: 'activated',
        mountpoint: null,
        thinId: 4,
        dmName: 'b',
        devPath: null,
        sizeBytes: 1 << 30,
        mappedBytes: null,
        mappedPercent: null,
      },
    ],
    unwanted: [],
    pendingSteps: 0,
    lastRun: null,
  };
}

describe('the live view', () => {
  it('shows the pool use, each device against its desired state, and what happened lately', () => {
    let model = initialLiveModel('web.yaml', '/var/lib/thinlayer', 30_000);
    model = applyMessage(model, { code: 'watch.run', run: 3, reasons: ['manifest'] }, at);
    model = applyMessage(model, { code: 'pool.use-warning', role: 'data', percent: 81, level: 80 }, at);
    model = applyMessage(model, { code: 'watch.run-done', run: 3, durationMs: 1200, steps: 2 }, at);
    model = withStatus(model, status());
    const screen = renderLiveView(model, { now: new Date(at.getTime() + 5000), width: 120 });
    expect(screen).toContain('thinlayer watch web.yaml');
    expect(screen).toContain('converged 5s ago');
    expect(screen).toMatch(/data +\[#{16}\.{4}\] +81%/);
    expect(screen).toMatch(/web1 +mounted +\/run\/thinlayer\/web1/);
    expect(screen).toMatch(/web2 +created → activated/);
    expect(screen).toMatch(/^! \d\d:\d\d:\d\d warning: pool data is 81% full \(past 80%\)$/m); // a warning is marked, in words too
    expect(screen).toContain('run 3: 2 steps in 1.2s');
  });

  it('keeps the last lines only, and fits the width', () => {
    let model = initialLiveModel('web.yaml', '/s', 1000);
    for (let i = 0; i < 20; i++) model = applyMessage(model, { code: 'warning', text: `note ${i} ${'x'.repeat(200)}` }, at);
    expect(model.recent).toHaveLength(RECENT_LINES);
    expect(model.recent[0].text).toMatch(/^note 12 /);
    const screen = renderLiveView(model, { now: at, width: 60 });
    for (const line of screen.split('\n')) expect(line.length).toBeLessThanOrEqual(60);
  });

  it('shows a failing watcher as retrying', () => {
    let model = initialLiveModel('web.yaml', '/s', 1000);
    model = applyMessage(model, { code: 'watch.run-failed', run: 1, error: 'dm.create x: EIO', failures: 2, retryInMs: 4000 }, at);
    const screen = renderLiveView(model, { now: at, width: 100 });
    expect(screen).toContain('retrying after 2 failed runs');
    expect(screen).toContain('error: run 1 failed (2 in a row): dm.create x: EIO; retrying in 4s');
  });

  it('at 80 columns, wraps rather than cuts an address or a command, and marks a warning as one', () => {
    let model = initialLiveModel('/etc/thinlayer/a-rather-long-directory/host.yaml', '/var/lib/thinlayer', 30_000);
    model = applyMessage(model, { code: 'watch.started', file: model.file, intervalMs: 30_000, metricsUrl: 'http://127.0.0.1:45321/metrics' }, at);
    model = applyMessage(model, { code: 'pool.use-warning', role: 'data', percent: 91.9, level: 90 }, at);
    model = applyMessage(model, { code: 'watch.needs-confirmation', file: model.file, deletes: ['device:web1', 'device:web2'] }, at);
    model = withStatus(model, status());
    const screen = renderLiveView(model, { now: at, width: 80 });
    const lines = screen.split('\n');
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(80);
    expect(screen).not.toContain('…');
    expect(lines).toContain('metrics http://127.0.0.1:45321/metrics');
    expect(lines).toContain('  thinlayer apply -f /etc/thinlayer/a-rather-long-directory/host.yaml --yes');
    // A command longer than the screen is still said whole, on its line.
    const long = applyMessage(model, { code: 'watch.needs-confirmation', file: `/srv/${'x'.repeat(80)}.yaml`, deletes: ['device:web1'] }, at);
    expect(renderLiveView(long, { now: at, width: 80 }).split('\n')).toContain(`  thinlayer apply -f /srv/${'x'.repeat(80)}.yaml --yes`);
    expect(screen).toMatch(/^! \d\d:\d\d:\d\d warning: pool data is 91\.9% full \(past 90%\)$/m);
    expect(screen).not.toMatch(/✗.*pool data/);
    expect(screen).toMatch(/^web1 .*\/dev\/mapper\/a$/m);
  });

  it('leaves plans and step starts out of the lines', () => {
    expect(describeMessage({ code: 'plan.ready', plan: { steps: [], impact: 'none', blockers: [] }, pass: 0 })).toBeNull();
    expect(describeMessage({ code: 'watch.run', run: 1, reasons: ['interval'] })).toBeNull();
  });
});

describe('watch output', () => {
  function collect(mode: 'json' | 'lines') {
    const out = new PassThrough();
    let text = '';
    out.setEncoding('utf8').on('data', (c: string) => (text += c));
    const output = new WatchOutput(out, mode, initialLiveModel('m.yaml', '/s', 1000), () => at);
    return { output, text: () => text };
  }

  it('prints one JSON object a line with --json, leaving out quiet drift checks', () => {
    const { output, text } = collect('json');
    output.notify({ code: 'plan.ready', plan: { steps: [], impact: 'none', blockers: [] }, pass: 0 });
    output.notify({ code: 'watch.run', run: 1, reasons: ['start'] });
    output.notify({ code: 'pool.grown', role: 'data', fromBytes: 1, toBytes: 2 });
    output.close();
    const lines = text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines).toEqual([
      { at: at.toISOString(), code: 'watch.run', run: 1, reasons: ['start'] },
      { at: at.toISOString(), code: 'pool.grown', role: 'data', fromBytes: 1, toBytes: 2 },
    ]);
  });

  it('prints timestamped lines when not on a terminal', () => {
    const { output, text } = collect('lines');
    output.notify({ code: 'watch.manifest-invalid', file: 'm.yaml', error: 'm.yaml:3: pool.name: expected a name', keeping: 'last-valid' });
    output.close();
    expect(text()).toContain(`${at.toISOString()} error: m.yaml:3: pool.name: expected a name`);
    expect(text()).toContain('keeping the last valid manifest');
  });
});
