import { describe, expect, it, onTestFinished } from 'vitest';
import { request } from 'node:http';
import { WatchMetrics, renderMetrics, serveMetrics } from '../../src/watch/metrics.ts';
import type { StatusView } from '../../src/app/status-view.ts';

function statusView(): StatusView {
  return {
    backend: 'sim',
    stateDir: '/tmp/x',
    pool: {
      name: 'demo',
      dmName: 'thinlayer-demo-pool',
      active: true,
      mode: 'rw',
      transactionId: 4,
      data: { used: 10, total: 100, usedBytes: 655360, totalBytes: 6553600, percent: 10 },
      metadata: { used: 5, total: 50, usedBytes: 20480, totalBytes: 204800, percent: 10 },
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
        mountpoint: '/run/web1',
        thinId: 3,
        dmName: 'x',
        devPath: '/dev/dm-3',
        sizeBytes: 1 << 30,
        mappedBytes: 1 << 20,
        mappedPercent: 0.1,
      },
      {
        name: 'web"2',
        layer: 'apache',
        actualLayer: 'apache',
        actualChainId: null,
        layerDrift: false,
        state: 'created',
        desired: 'activated',
        mountpoint: null,
        thinId: 4,
        dmName: 'y',
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

function get(url: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    })
      .on('error', reject)
      .end();
  });
}

describe('metrics', () => {
  it('renders devices by state, pool use and reconcile runs in the text format', () => {
    const m = new WatchMetrics();
    m.observeStatus(statusView());
    m.observeRun(true, 40, new Date(1_700_000_000_000));
    m.observeRun(false, 3000);
    m.countPoolGrow();
    const text = renderMetrics(m.read());
    const lines = text.split('\n');
    expect(lines).toContain('thinlayer_devices{state="mounted"} 1');
    expect(lines).toContain('thinlayer_devices{state="created"} 1');
    expect(lines).toContain('thinlayer_devices{state="absent"} 0');
    expect(lines).toContain('thinlayer_device_state{device="web\\"2",state="created",desired="activated"} 1');
    expect(lines).toContain('thinlayer_devices_converged 1');
    expect(lines).toContain('thinlayer_pool_data_used_ratio{pool="demo"} 0.1');
    expect(lines).toContain('thinlayer_pool_metadata_size_bytes{pool="demo"} 204800');
    expect(lines).toContain('thinlayer_reconcile_runs_total 2');
    expect(lines).toContain('thinlayer_reconcile_failures_total 1');
    expect(lines).toContain('thinlayer_reconcile_consecutive_failures 1');
    expect(lines).toContain('thinlayer_reconcile_duration_seconds_bucket{le="0.05"} 1');
    expect(lines).toContain('thinlayer_reconcile_duration_seconds_bucket{le="2.5"} 1');
    expect(lines).toContain('thinlayer_reconcile_duration_seconds_bucket{le="5"} 2');
    expect(lines).toContain('thinlayer_reconcile_duration_seconds_bucket{le="+Inf"} 2');
    expect(lines).toContain('thinlayer_reconcile_duration_seconds_sum 3.04');
    expect(lines).toContain('thinlayer_reconcile_duration_seconds_count 2');
    expect(lines).toContain('thinlayer_reconcile_last_success_timestamp_seconds 1700000000');
    expect(lines).toContain('thinlayer_pool_grows_total 1');
    expect(lines).toContain('# TYPE thinlayer_reconcile_duration_seconds histogram');
    // Every sample line is `name{labels} value`.
    for (const line of lines.filter((l) => l && !l.startsWith('#'))) expect(line).toMatch(/^[a-z_]+(\{.*\})? (-?[0-9.e+]+|\+Inf|NaN)$/);
  });

  it('serves /metrics on 127.0.0.1 and nothing else', async () => {
    const m = new WatchMetrics();
    m.observeStatus(statusView());
    const server = await serveMetrics(m, 0);
    onTestFinished(() => server.close());
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const ok = await get(server.url);
    expect(ok.status).toBe(200);
    expect(ok.type).toContain('text/plain; version=0.0.4');
    expect(ok.body).toContain('thinlayer_devices{state="mounted"} 1');
    expect((await get(server.url.replace('/metrics', '/other'))).status).toBe(404);
  });

  it('says which port is taken as a usage error', async () => {
    const first = await serveMetrics(new WatchMetrics(), 0);
    onTestFinished(() => first.close());
    await expect(serveMetrics(new WatchMetrics(), first.port)).rejects.toMatchObject({
      code: 'E_USAGE',
      exitCode: 2,
      message: expect.stringContaining('in use'),
    });
  });
});
