import { describe, expect, it, onTestFinished } from 'vitest';
import { Subject } from 'rxjs';
import { startLoop, type RunEnd } from '../../src/watch/watch-loop.ts';
import type { Trigger } from '../../src/watch/triggers.ts';
import type { BackoffPolicy } from '../../src/watch/backoff.ts';
import { deferred, waitFor } from './helpers.ts';

const FAST: BackoffPolicy = { baseMs: 1, maxMs: 5, factor: 2, jitter: 0 };

/** A fake reconcile whose runs end only when the test says so. */
function gatedRuns() {
  const calls: Array<{ why: Trigger[]; signal: AbortSignal; finish: (error?: unknown) => void }> = [];
  const run = (why: Trigger[], signal: AbortSignal) => {
    const gate = deferred();
    calls.push({ why, signal, finish: (error) => (error ? gate.reject(error) : gate.resolve()) });
    return gate.promise;
  };
  return { calls, run };
}

function setup(run: (why: Trigger[], signal: AbortSignal) => Promise<void>) {
  const triggers = new Subject<Trigger>();
  const controller = new AbortController();
  const ends: RunEnd[] = [];
  const loop = startLoop({ triggers, run, signal: controller.signal, backoff: FAST, random: () => 0.5, onRunEnd: (e) => ends.push(e) });
  onTestFinished(() => controller.abort());
  return { triggers, controller, loop, ends };
}

describe('the watch loop', () => {
  it('runs once for a trigger when idle', async () => {
    const fake = gatedRuns();
    const { triggers, loop } = setup(fake.run);
    triggers.next({ kind: 'start' });
    await waitFor('the first run', () => fake.calls.length === 1);
    expect(fake.calls[0].why).toEqual([{ kind: 'start' }]);
    fake.calls[0].finish();
    await waitFor('the loop to go idle', () => !loop.busy);
    expect(loop.runs).toBe(1);
  });

  it('runs exactly once more for any number of triggers that arrive during a run', async () => {
    const fake = gatedRuns();
    const { triggers, loop, ends } = setup(fake.run);
    triggers.next({ kind: 'start' });
    await waitFor('the first run', () => fake.calls.length === 1);
    triggers.next({ kind: 'manifest' });
    triggers.next({ kind: 'interval' });
    triggers.next({ kind: 'hangup' });
    expect(fake.calls).toHaveLength(1); // one run at a time
    fake.calls[0].finish();
    await waitFor('the second run', () => fake.calls.length === 2);
    expect(fake.calls[1].why.map((t) => t.kind)).toEqual(['manifest', 'interval', 'hangup']);
    fake.calls[1].finish();
    await waitFor('the loop to go idle', () => !loop.busy);
    expect(fake.calls).toHaveLength(2);
    expect(ends.map((e) => e.ok)).toEqual([true, true]);
  });

  it('does not run again when nothing arrived during a run', async () => {
    const fake = gatedRuns();
    const { triggers, loop } = setup(fake.run);
    triggers.next({ kind: 'start' });
    await waitFor('the first run', () => fake.calls.length === 1);
    fake.calls[0].finish();
    await waitFor('the loop to go idle', () => !loop.busy);
    triggers.next({ kind: 'request', detail: 'apply' });
    await waitFor('the second run', () => fake.calls.length === 2);
    fake.calls[1].finish();
    await waitFor('the loop to go idle', () => !loop.busy);
    expect(loop.runs).toBe(2);
  });

  it('serves a trigger that arrives while a run is ending, whatever the microtask it lands in', async () => {
    // The trigger is emitted a few promise hops after the run's last await: around the moment the loop
    // looks for more work and completes. A loop that checks and completes in separate ticks drops it.
    for (let hops = 0; hops < 8; hops++) {
      const triggers = new Subject<Trigger>();
      const controller = new AbortController();
      let runs = 0;
      const loop = startLoop({
        triggers,
        signal: controller.signal,
        backoff: FAST,
        run: async () => {
          runs += 1;
          if (runs !== 1) return;
          let p = Promise.resolve();
          for (let i = 0; i < hops; i++) p = p.then(() => undefined);
          void p.then(() => triggers.next({ kind: 'pool-event' }));
        },
      });
      triggers.next({ kind: 'start' });
      await waitFor(`two runs (trigger after ${hops} hops)`, () => runs === 2 && !loop.busy, 2000);
      controller.abort();
      await loop.finished;
      expect(runs).toBe(2);
    }
  });

  it('reports a failed run, retries it with backoff and keeps going', async () => {
    const fake = gatedRuns();
    const { triggers, loop, ends } = setup(fake.run);
    triggers.next({ kind: 'start' });
    await waitFor('the first run', () => fake.calls.length === 1);
    fake.calls[0].finish(new Error('EIO from the kernel'));
    await waitFor('the retry', () => fake.calls.length === 2);
    expect(fake.calls[1].why).toEqual([{ kind: 'retry' }]);
    expect(ends[0]).toMatchObject({ ok: false, failures: 1, retryInMs: 1 });
    expect((ends[0].error as Error).message).toBe('EIO from the kernel');
    fake.calls[1].finish(new Error('EIO again'));
    await waitFor('the second retry', () => fake.calls.length === 3);
    expect(ends[1]).toMatchObject({ ok: false, failures: 2, retryInMs: 2 });
    fake.calls[2].finish();
    await waitFor('the loop to go idle', () => !loop.busy);
    expect(ends[2]).toMatchObject({ ok: true, failures: 0 });
    // Still alive after the failures.
    triggers.next({ kind: 'interval' });
    await waitFor('a run after recovery', () => fake.calls.length === 4);
    fake.calls[3].finish();
    await waitFor('the loop to go idle', () => !loop.busy);
    expect(loop.runs).toBe(4);
  });

  it('finishes the current run when aborted, hands it the signal, and runs nothing more', async () => {
    const fake = gatedRuns();
    const { triggers, controller, loop } = setup(fake.run);
    triggers.next({ kind: 'start' });
    await waitFor('the first run', () => fake.calls.length === 1);
    triggers.next({ kind: 'manifest' }); // would cause another run, but the loop is stopping
    controller.abort();
    expect(fake.calls[0].signal.aborted).toBe(true);
    let finished = false;
    void loop.finished.then(() => (finished = true));
    await Promise.resolve();
    expect(finished).toBe(false); // waits for the run in progress
    fake.calls[0].finish();
    const summary = await loop.finished;
    expect(summary).toEqual({ runs: 1, failures: 0 });
    triggers.next({ kind: 'interval' });
    expect(fake.calls).toHaveLength(1);
  });

  it('does not wait out a backoff once aborted', async () => {
    const triggers = new Subject<Trigger>();
    const controller = new AbortController();
    let runs = 0;
    const loop = startLoop({
      triggers,
      signal: controller.signal,
      backoff: { baseMs: 3_600_000, maxMs: 3_600_000, factor: 2, jitter: 0 },
      run: async () => {
        runs += 1;
        throw new Error('always failing');
      },
    });
    triggers.next({ kind: 'start' });
    await waitFor('the failed run', () => runs === 1 && loop.busy);
    controller.abort();
    expect(await loop.finished).toEqual({ runs: 1, failures: 1 });
  });

  it('keeps running when a reporter throws', async () => {
    const triggers = new Subject<Trigger>();
    const controller = new AbortController();
    onTestFinished(() => controller.abort());
    let runs = 0;
    const loop = startLoop({
      triggers,
      signal: controller.signal,
      backoff: FAST,
      run: async () => {
        runs += 1;
      },
      onRunStart: () => {
        throw new Error('broken terminal');
      },
    });
    triggers.next({ kind: 'start' });
    await waitFor('a run', () => runs === 1 && !loop.busy);
    triggers.next({ kind: 'interval' });
    await waitFor('another run', () => runs === 2 && !loop.busy);
  });
});
