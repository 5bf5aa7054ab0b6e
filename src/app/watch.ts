// `watch`: keep the host converged to a manifest for as long as it runs (src/watch/watcher.ts), with
// Prometheus metrics served while it does when a port is given.

import type { BackendChoice } from '../kernel/select.ts';
import type { Reporter } from '../messages/message-port.ts';
import { UserError } from '../errors/index.ts';
import { watch } from '../watch/watcher.ts';
import type { LoopSummary } from '../watch/watch-loop.ts';
import { WatchMetrics, serveMetrics, type MetricsServer } from '../watch/metrics.ts';
import type { StatusView } from './status-view.ts';

export interface WatchManifestOptions {
  file: string;
  stateDir: string;
  backend: BackendChoice;
  intervalMs: number;
  /** Serve metrics on 127.0.0.1:PORT (0: any free port); null: none. */
  metricsPort: number | null;
  reporter: Reporter;
  /** Called with the status after every run that reached the end. */
  onStatus?: (view: StatusView) => void;
  /** Aborting ends the watch after the current step, which is recorded. */
  signal: AbortSignal;
}

/** Watches until the signal is aborted; throws a UserError at once for a bad interval or manifest. */
export async function watchManifest(opts: WatchManifestOptions): Promise<LoopSummary> {
  if (!Number.isFinite(opts.intervalMs) || opts.intervalMs < 10) throw new UserError(`the drift check interval must be at least 10ms, not ${opts.intervalMs}`, { path: '--interval' }, 'E_USAGE');
  const metrics = new WatchMetrics();
  let server: MetricsServer | null = null;
  try {
    if (opts.metricsPort !== null) server = await serveMetrics(metrics, opts.metricsPort);
    return await watch({ ...opts, metrics, metricsUrl: server?.url ?? null });
  } finally {
    await server?.close();
  }
}
