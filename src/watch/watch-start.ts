// `watch`'s start, as the CLI calls it: the interval checked, Prometheus metrics served while it
// runs when a port is given, and the watcher (watcher.ts), whose runs converge through src/app.

import type { BackendChoice } from '../kernel/select.ts';
import type { Reporter } from '../messages/message-port.ts';
import { UserError } from '../errors/index.ts';
import { watch } from './watcher.ts';
import type { LoopSummary } from './watch-loop.ts';
import { WatchMetrics, serveMetrics, type MetricsServer } from './metrics.ts';
import type { StatusView } from '../app/status-view.ts';

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
  if (!Number.isFinite(opts.intervalMs) || opts.intervalMs < 10)
    throw new UserError(`the drift check interval must be at least 10ms, not ${opts.intervalMs}`, { path: '--interval' }, 'E_USAGE');
  const metrics = new WatchMetrics();
  let server: MetricsServer | null = null;
  try {
    if (opts.metricsPort !== null) server = await serveMetrics(metrics, opts.metricsPort);
    return await watch({ ...opts, metrics, metricsUrl: server?.url ?? null });
  } finally {
    await server?.close();
  }
}
