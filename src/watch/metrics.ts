// Prometheus metrics of a watcher: devices by state, pool data and metadata use, reconcile
// durations and failures. The registry is plain data updated by the watcher; renderMetrics turns
// it into the text exposition format (pure); serveMetrics answers GET /metrics on 127.0.0.1 only,
// since what it tells (device names, mountpoints' states) is for the host's own monitoring agent.

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { StatusView } from '../app/status-view.ts';
import { UserError } from '../errors/index.ts';

export const DURATION_BUCKETS_SECONDS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300] as const;
const DEVICE_STATES = ['absent', 'created', 'activated', 'mounted'] as const;

export interface MetricsSnapshot {
  devices: Array<{ name: string; state: string; desired: string }>;
  pool: null | {
    name: string;
    active: boolean;
    data: { usedBytes: number; totalBytes: number } | null;
    metadata: { usedBytes: number; totalBytes: number } | null;
  };
  runs: number;
  failures: number;
  consecutiveFailures: number;
  /** Cumulative counts per bucket of DURATION_BUCKETS_SECONDS, then the +Inf count. */
  durationBuckets: number[];
  durationSumSeconds: number;
  lastSuccessUnixSeconds: number | null;
  poolGrows: number;
}

export class WatchMetrics {
  private snapshot: MetricsSnapshot = {
    devices: [],
    pool: null,
    runs: 0,
    failures: 0,
    consecutiveFailures: 0,
    durationBuckets: new Array(DURATION_BUCKETS_SECONDS.length + 1).fill(0),
    durationSumSeconds: 0,
    lastSuccessUnixSeconds: null,
    poolGrows: 0,
  };

  observeRun(ok: boolean, durationMs: number, at: Date = new Date()): void {
    const s = this.snapshot;
    const seconds = durationMs / 1000;
    s.runs += 1;
    s.durationSumSeconds += seconds;
    DURATION_BUCKETS_SECONDS.forEach((le, i) => {
      if (seconds <= le) s.durationBuckets[i] += 1;
    });
    s.durationBuckets[DURATION_BUCKETS_SECONDS.length] += 1;
    if (ok) {
      s.consecutiveFailures = 0;
      s.lastSuccessUnixSeconds = Math.floor(at.getTime() / 1000);
    } else {
      s.failures += 1;
      s.consecutiveFailures += 1;
    }
  }

  observeStatus(view: StatusView): void {
    this.snapshot.devices = view.devices.map((d) => ({ name: d.name, state: d.state, desired: d.desired }));
    const p = view.pool;
    this.snapshot.pool = p
      ? {
          name: p.name,
          active: p.active,
          data: p.data ? { usedBytes: p.data.usedBytes, totalBytes: p.data.totalBytes } : null,
          metadata: p.metadata ? { usedBytes: p.metadata.usedBytes, totalBytes: p.metadata.totalBytes } : null,
        }
      : null;
  }

  countPoolGrow(): void {
    this.snapshot.poolGrows += 1;
  }

  read(): MetricsSnapshot {
    return structuredClone(this.snapshot);
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

function labels(pairs: Record<string, string>): string {
  const body = Object.entries(pairs)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',');
  return body ? `{${body}}` : '';
}

function num(n: number): string {
  return Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';
}

/** The Prometheus text exposition format (version 0.0.4). */
export function renderMetrics(s: MetricsSnapshot): string {
  const out: string[] = [];
  const family = (name: string, type: 'gauge' | 'counter' | 'histogram', help: string, samples: Array<[string, Record<string, string>, number]>) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [suffix, l, v] of samples) out.push(`${name}${suffix}${labels(l)} ${num(v)}`);
  };

  family(
    'thinlayer_devices',
    'gauge',
    'Devices of the desired state by observed state.',
    DEVICE_STATES.map((state) => ['', { state }, s.devices.filter((d) => d.state === state).length]),
  );
  family(
    'thinlayer_device_state',
    'gauge',
    'One series per device: 1 for its observed state.',
    s.devices.map((d) => ['', { device: d.name, state: d.state, desired: d.desired }, 1]),
  );
  family('thinlayer_devices_converged', 'gauge', 'Devices whose observed state is their desired state.', [
    ['', {}, s.devices.filter((d) => d.state === d.desired).length],
  ]);

  const pool = s.pool;
  const poolLabel = { pool: pool?.name ?? '' };
  family('thinlayer_pool_active', 'gauge', 'Whether the thin-pool device is active.', pool ? [['', poolLabel, pool.active ? 1 : 0]] : []);
  for (const role of ['data', 'metadata'] as const) {
    const use = pool?.[role] ?? null;
    family(`thinlayer_pool_${role}_used_bytes`, 'gauge', `Bytes of pool ${role} in use.`, use ? [['', poolLabel, use.usedBytes]] : []);
    family(`thinlayer_pool_${role}_size_bytes`, 'gauge', `Size of the pool's ${role} space in bytes.`, use ? [['', poolLabel, use.totalBytes]] : []);
    family(
      `thinlayer_pool_${role}_used_ratio`,
      'gauge',
      `Share of the pool's ${role} space in use (0 to 1).`,
      use ? [['', poolLabel, use.totalBytes > 0 ? use.usedBytes / use.totalBytes : 0]] : [],
    );
  }
  family('thinlayer_pool_grows_total', 'counter', 'Times the pool was grown by autoextend.', [['', {}, s.poolGrows]]);

  family('thinlayer_reconcile_runs_total', 'counter', 'Reconcile runs, failed or not.', [['', {}, s.runs]]);
  family('thinlayer_reconcile_failures_total', 'counter', 'Reconcile runs that failed.', [['', {}, s.failures]]);
  family('thinlayer_reconcile_consecutive_failures', 'gauge', 'Failed runs since the last run that succeeded.', [['', {}, s.consecutiveFailures]]);
  family('thinlayer_reconcile_duration_seconds', 'histogram', 'How long reconcile runs took.', [
    ...DURATION_BUCKETS_SECONDS.map((le, i): [string, Record<string, string>, number] => ['_bucket', { le: String(le) }, s.durationBuckets[i]]),
    ['_bucket', { le: '+Inf' }, s.durationBuckets[DURATION_BUCKETS_SECONDS.length]],
    ['_sum', {}, s.durationSumSeconds],
    ['_count', {}, s.durationBuckets[DURATION_BUCKETS_SECONDS.length]],
  ]);
  family(
    'thinlayer_reconcile_last_success_timestamp_seconds',
    'gauge',
    'When a reconcile run last succeeded (Unix time).',
    s.lastSuccessUnixSeconds === null ? [] : [['', {}, s.lastSuccessUnixSeconds]],
  );
  return `${out.join('\n')}\n`;
}

export interface MetricsServer {
  url: string;
  port: number;
  close(): Promise<void>;
}

/** Serves GET /metrics on 127.0.0.1:port (0: any free port). */
export async function serveMetrics(metrics: WatchMetrics, port: number): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(req.method === 'HEAD' ? undefined : renderMetrics(metrics.read()));
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('thinlayer watch: metrics are at /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => {
      reject(
        new UserError(
          `cannot serve metrics on 127.0.0.1:${port}: ${e.code === 'EADDRINUSE' ? 'the port is in use' : e.message}`,
          { path: '--metrics-port', expected: 'a free TCP port' },
          'E_USAGE',
        ),
      );
    });
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const actual = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actual}/metrics`,
    port: actual,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
