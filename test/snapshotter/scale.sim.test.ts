// A complexity check: a small Prepare after 1,000 of containerd's largest legal requests costs less
// than twice one on an empty state. Before the bounds and session resume, labels of megabytes made
// every session replay the whole state, and a small Prepare took seconds. Each Prepare measured here
// comes after a pause longer than the session's linger, so it opens a session of its own (the case
// that was slow); the figure is the median of several, and both medians are printed.

import { describe, it, expect, onTestFinished } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { openStateDir } from '../../src/events/state-dir.ts';
import { SessionGate } from '../../src/snapshotter/session-gate.ts';
import { SnapshotService } from '../../src/snapshotter/service.ts';
import { stepsOf } from '../../src/snapshotter/snapshot-steps.ts';
import { Run } from '../../src/engine/with-run.ts';
import { ensurePoolAndBase } from '../../src/snapshotter/pool-setup.ts';
import { CrashPoints } from '../../src/engine/crash-points.ts';
import { initialState } from '../../src/lifecycle/projection.ts';
import { silentReporter } from '../../src/messages/message-port.ts';
import { loadedManifest } from '../builders/manifest.ts';
import { MAX_KEY_BYTES, MAX_LABEL_BYTES } from '../../src/snapshotter/request-limits.ts';
import { poolManifest } from './harness.ts';

const COUNT = Number(process.env.THINLAYER_SCALE_COUNT ?? 1000);
/** Labels per large request, each at the largest legal size (see the note on the bound in docs/containerd.md). */
const LABELS = 16;
const LINGER_MS = 200;
const SAMPLES = 11;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

describe('snapshotter at scale', () => {
  it(`a small Prepare after ${COUNT} largest legal requests costs under twice one on an empty state`, async () => {
    const root = mkdtempSync(join(tmpdir(), 'thinlayer-snapscale-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const stateDir = join(root, 'state');
    const sim = new SimKernel({ dir: join(stateDir, 'sim') });
    onTestFinished(() => sim.close());
    const gate = new SessionGate(
      { stateDir, kernel: sim, crash: new CrashPoints(null), reporter: silentReporter, lockWaitMs: 30_000, lingerMs: LINGER_MS },
      initialState(),
    );
    onTestFinished(() => gate.close());
    const runSteps = stepsOf(new Run('snapshotter'), 'thinlayer-ctr-pool', silentReporter);
    const manifest = loadedManifest(poolManifest(), join(root, 'pool.yaml'));
    await gate.run((s) => ensurePoolAndBase(s, manifest.pool, manifest.file, runSteps));
    await gate.close();
    const service = new SnapshotService({
      gate,
      kernel: sim,
      runSteps,
      pool: 'ctr',
      filesystem: 'ext4',
      stateDir: await openStateDir(stateDir),
      reporter: silentReporter,
    });
    await service.prepare('', 'layer-src', '', {}, 'active');
    await service.commit('', 'layer', 'layer-src', {});

    let n = 0;
    /** Small Prepares of the committed layer, each after a pause that lets the session close. */
    const measure = async (tag: string) => {
      const times: number[] = [];
      // The large state's writes are flushed first, so its writeback does not land on the samples.
      execFileSync('sync');
      for (let i = 0; i < SAMPLES + 1; i++) {
        await sleep(LINGER_MS * 2);
        const t0 = performance.now();
        await service.prepare('', `${tag}-${n++}`, 'layer', { small: 'x' }, 'active');
        if (i > 0) times.push(performance.now() - t0); // the first warms up
      }
      return median(times);
    };
    const empty = await measure('empty');

    const big = (i: number) => {
      const key = `${String(i).padStart(6, '0')}/`.padEnd(MAX_KEY_BYTES, 'k');
      const labels = Object.fromEntries(
        Array.from({ length: LABELS }, (_, j) => {
          const k = `containerd.io/label-${j}`;
          return [k, String(i % 10).repeat(MAX_LABEL_BYTES - k.length)];
        }),
      );
      return { key, labels };
    };
    for (let i = 0; i < COUNT; i += 20) {
      await Promise.all(
        Array.from({ length: Math.min(20, COUNT - i) }, (_, j) => {
          const { key, labels } = big(i + j);
          return service.prepare('', key, 'layer', labels, 'active');
        }),
      );
    }
    expect(service.list('', ['labels."containerd.io/label-0"']).length).toBe(COUNT);
    const full = await measure('full');
    // A measurement, printed for the record; the bound is a complexity check, not a speed target.
    console.log(
      `snapshotter scale: median small Prepare ${empty.toFixed(1)} ms on an empty state, ${full.toFixed(1)} ms after ${COUNT} requests of ${LABELS} × ${MAX_LABEL_BYTES}-byte labels and ${MAX_KEY_BYTES}-byte keys (×${(full / empty).toFixed(2)})`,
    );
    expect(full).toBeLessThan(2 * empty);
  }, 600_000);
});
