// A watcher whose kernel fails: every failure is reported and retried with backoff, and the watcher
// converges once the kernel recovers.

import { describe, expect, it, onTestFinished } from 'vitest';
import path from 'node:path';
import { NEVER } from 'rxjs';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import type { KernelPort } from '../../src/kernel/kernel-port.ts';
import { KernelError, ERRNO } from '../../src/errors/index.ts';
import { CollectingReporter } from '../../src/messages/message-port.ts';
import { watch } from '../../src/watch/watcher.ts';
import { WatchMetrics } from '../../src/watch/metrics.ts';
import { box, deviceStates } from './sim-harness.ts';
import { waitFor } from './helpers.ts';

/** The simulated kernel, with the first `failures` calls of `operation` failing with EIO. */
function failingKernel(dir: string, operation: keyof KernelPort, failures: number): { kernel: KernelPort; failed: () => number } {
  const sim = new SimKernel({ dir });
  let failed = 0;
  const kernel = new Proxy(sim, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (prop !== operation || typeof value !== 'function') return typeof value === 'function' ? value.bind(target) : value;
      return async (...args: unknown[]) => {
        if (failed < failures) {
          failed += 1;
          throw new KernelError(`dm.${String(prop)}`, String(args[0]), ERRNO.EIO, 'injected');
        }
        return value.apply(target, args);
      };
    },
  }) as KernelPort;
  return { kernel, failed: () => failed };
}

describe('a watcher on a failing kernel', () => {
  it('reports each failed run, retries with growing backoff, and converges when the kernel recovers', async () => {
    const b = box((mnt) => ({ d1: { layer: 'l1', state: 'mounted', mountpoint: `${mnt}/d1` } }));
    const { kernel, failed } = failingKernel(path.join(b.stateDir, 'sim'), 'create', 3);
    const reporter = new CollectingReporter();
    const metrics = new WatchMetrics();
    const controller = new AbortController();
    const done = watch({
      file: b.file,
      stateDir: b.stateDir,
      backend: 'sim',
      kernel,
      // A long drift interval: every run after the first is a retry.
      intervalMs: 3_600_000,
      backoff: { baseMs: 5, maxMs: 50, factor: 2, jitter: 0 },
      reporter,
      metrics,
      signal: controller.signal,
      hangups: NEVER,
    });
    onTestFinished(async () => {
      controller.abort();
      await done.catch(() => undefined);
    });

    await waitFor('a run that succeeds', () => reporter.messages.some((m) => m.code === 'watch.run-done'));
    expect(await deviceStates(b)).toEqual([['d1', 'mounted']]);
    expect(failed()).toBe(3);
    const failures = reporter.messages.filter((m) => m.code === 'watch.run-failed');
    expect(failures.map((m) => m.code === 'watch.run-failed' && [m.failures, m.retryInMs])).toEqual([
      [1, 5],
      [2, 10],
      [3, 20],
    ]);
    for (const f of failures) expect(f.code === 'watch.run-failed' && f.error).toMatch(/dm\.create thinlayer-w-pool: EIO \(injected\)/);
    const runs = reporter.messages.filter((m) => m.code === 'watch.run');
    expect(runs.map((m) => m.code === 'watch.run' && m.reasons)).toEqual([['start'], ['retry'], ['retry'], ['retry']]);
    expect(reporter.messages.filter((m) => m.code === 'watch.run-done')).toHaveLength(1);

    const seen = metrics.read();
    expect(seen).toMatchObject({ runs: 4, failures: 3, consecutiveFailures: 0 });
    expect(seen.devices).toEqual([{ name: 'd1', state: 'mounted', desired: 'mounted' }]);

    // The failed steps are in the log as such, and nothing is left in doubt.
    const events = await b.events();
    expect(events.filter((e) => e.type === 'step.failed')).toHaveLength(3);
    expect((await b.status()).pendingSteps).toBe(0);

    controller.abort();
    expect(await done).toEqual({ runs: 4, failures: 3 });
  });
});
