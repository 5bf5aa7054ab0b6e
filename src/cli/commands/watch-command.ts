// `thinlayer watch -f MANIFEST`: keeps the host converged for as long as it runs (src/watch).
// SIGINT and SIGTERM let the current step finish and be recorded, then it exits 0; SIGHUP asks
// for a reconcile now. Output: the live view on a terminal, NDJSON with --json, lines otherwise.
// Errors are thrown to the entry point (main.ts), which alone turns them into exit codes.

import { resolve } from 'node:path';
import type { CommandContext } from '../command-context.ts';
import { UserError } from '../../errors/index.ts';
import { watchManifest } from '../../watch/watch-start.ts';
import { WatchOutput, outputModeFor } from '../../watch/watch-output.ts';
import { initialLiveModel } from '../../watch/live-view.ts';

export interface WatchCommandOptions {
  file: string;
  stateDir: string;
  backend: 'auto' | 'kernel' | 'sim';
  json: boolean;
  intervalMs: number;
  metricsPort: number | null;
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  /** Aborting stops the watch as SIGTERM does. */
  signal?: AbortSignal;
}

export const DEFAULT_INTERVAL_MS = 30_000;
const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `--interval`: 30s, 2m, 1h, 500ms, or a bare number of seconds. */
export function parseInterval(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  const ms = m ? Math.round(Number(m[1]) * UNITS[m[2] ?? 's']) : NaN;
  if (!Number.isFinite(ms) || ms < 10) {
    throw new UserError(
      `--interval ${JSON.stringify(text)} is not a duration of at least 10ms`,
      { path: '--interval', expected: 'a duration such as 30s, 2m, 1h or 500ms' },
      'E_USAGE',
    );
  }
  return ms;
}

/** `--metrics-port`: a TCP port, 0 for any free one. */
export function parseMetricsPort(text: string): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new UserError(
      `--metrics-port ${JSON.stringify(text)} is not a TCP port`,
      { path: '--metrics-port', expected: 'a port number from 0 to 65535' },
      'E_USAGE',
    );
  }
  return port;
}

export async function watchCommand(opts: WatchCommandOptions): Promise<number> {
  const controller = new AbortController();
  const stop = () => controller.abort();
  opts.signal?.addEventListener('abort', stop, { once: true });
  if (opts.signal?.aborted) stop();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const stateDir = resolve(opts.stateDir);
  const output = new WatchOutput(opts.out, outputModeFor(opts.out, opts.json), initialLiveModel(opts.file, stateDir, opts.intervalMs));
  try {
    await watchManifest({
      file: opts.file,
      stateDir,
      backend: opts.backend,
      intervalMs: opts.intervalMs,
      metricsPort: opts.metricsPort,
      reporter: output,
      onStatus: (view) => output.showStatus(view),
      signal: controller.signal,
    });
    return 0;
  } finally {
    output.close();
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    opts.signal?.removeEventListener('abort', stop);
  }
}

export async function run({ io, json, o, stateDir, backend }: CommandContext): Promise<number> {
  const file = o.file as string | undefined;
  if (file === undefined) throw new UserError('watch needs a manifest: -f FILE', { path: '--file', expected: 'a manifest file' }, 'E_USAGE');
  if (file === '-')
    throw new UserError(
      'watch follows a manifest file as it changes: standard input cannot be watched',
      { path: '--file', expected: 'a manifest file' },
      'E_USAGE',
    );
  return watchCommand({
    file,
    stateDir,
    backend,
    json,
    intervalMs: o.interval !== undefined ? parseInterval(o.interval as string) : DEFAULT_INTERVAL_MS,
    metricsPort: o.metricsPort !== undefined ? parseMetricsPort(o.metricsPort as string) : null,
    out: io.out,
    err: io.err,
  });
}
