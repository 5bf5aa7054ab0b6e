// Pool autoextend and growPool on the simulated kernel.

import { describe, expect, it, onTestFinished } from 'vitest';
import { NEVER } from 'rxjs';
import { watch } from '../../src/watch/watcher.ts';
import { CollectingReporter } from '../../src/messages/message-port.ts';
import fs from 'node:fs';
import path from 'node:path';
import * as api from '../../src/api/index.ts';
import { Session } from '../../src/engine/session.ts';
import { growPool, POOL_GROW_OP } from '../../src/actions/grow-pool.ts';
import { silentReporter } from '../../src/messages/message-port.ts';
import { UserError } from '../../src/errors/index.ts';
import type { PoolDraft } from '../builders/manifest.ts';
import { box, startWatch } from './sim-harness.ts';
import { waitFor } from './helpers.ts';
import { simMounted } from '../sim-mounts.ts';

const MiB = 1024 * 1024;
const TINY_POOL: Partial<PoolDraft> = { data: { file: 'data.img', size: '8M' }, metadata: { file: 'metadata.img', size: '4M' } };

async function mutating<T>(stateDir: string, work: (s: Session) => Promise<T>): Promise<T> {
  const session = await Session.open({ stateDir, backend: 'sim', reporter: silentReporter, mutate: true, command: 'test' });
  try {
    return await work(session);
  } finally {
    await session.close();
  }
}

describe('pool autoextend', () => {
  it('warns as the pool fills and grows the data file by 20% steps until use is below the threshold', async () => {
    const b = box((mnt) => ({ d1: { layer: 'l1', state: 'mounted', mountpoint: `${mnt}/d1` } }), TINY_POOL);
    const w = startWatch(b);
    await waitFor('converged', () => w.messages.some((m) => m.code === 'watch.run-done'));

    // Fill the pool to about 87% from "another process": write, then let writeback account it.
    const before = (await b.status()).pool!.data!;
    const fill = Math.ceil(0.87 * before.totalBytes) - before.usedBytes;
    expect(fill).toBeGreaterThan(0);
    fs.writeFileSync(simMounted(b.stateDir, path.join(b.mnt, 'd1'), 'big.bin'), Buffer.alloc(fill, 1));
    await b.sim.sync(path.join(b.mnt, 'd1'));
    expect((await b.status()).pool!.data!.percent).toBeGreaterThanOrEqual(80);
    const grown = await waitFor('the pool to grow', () => w.messages.find((m) => m.code === 'pool.grown'));
    expect(grown).toMatchObject({ role: 'data', fromBytes: 8 * MiB, toBytes: 8 * MiB + 26 * 64 * 1024 });
    const warning = w.messages.find((m) => m.code === 'pool.use-warning');
    expect(warning).toMatchObject({ role: 'data' });
    expect(warning!.level).toBeGreaterThanOrEqual(80);

    await waitFor('use below the threshold', async () => (await b.status()).pool!.data!.percent < 80);
    await w.moreRuns(1); // a run that found nothing more to grow
    const status = await b.status();
    const size = fs.statSync(path.join(b.stateDir, 'data.img')).size;
    expect(size).toBeGreaterThan(8 * MiB);
    expect(status.pool!.data!.totalBytes).toBe(size); // the live table covers the whole file
    const events = await b.events();
    const intents = events.filter((e) => e.type === 'step.intent' && e.op === POOL_GROW_OP);
    const dones = events.filter((e) => e.type === 'step.done' && e.op === POOL_GROW_OP);
    expect(intents.length).toBeGreaterThanOrEqual(1);
    expect(dones).toHaveLength(intents.length);
    expect(w.messages.filter((m) => m.code === 'pool.grown')).toHaveLength(intents.length);
    // The data written is still there, on a device that never stopped being mounted.
    expect(fs.statSync(simMounted(b.stateDir, path.join(b.mnt, 'd1'), 'big.bin')).size).toBe(fill);
    expect(status.devices.map((d) => d.state)).toEqual(['mounted']);
  });

  it('runs on the pool low-water event, between drift checks', async () => {
    const b = box((mnt) => ({ d1: { layer: 'l1', state: 'mounted', mountpoint: `${mnt}/d1` } }), TINY_POOL);
    const reporter = new CollectingReporter();
    const controller = new AbortController();
    // No drift check during the test: a run after the first can only come from the pool's event.
    const done = watch({
      file: b.file,
      stateDir: b.stateDir,
      backend: 'sim',
      intervalMs: 3_600_000,
      poolPollMs: 10,
      reporter,
      signal: controller.signal,
      hangups: NEVER,
    });
    onTestFinished(async () => {
      controller.abort();
      await done;
    });
    await waitFor('converged', () => reporter.messages.some((m) => m.code === 'watch.run-done'));

    // Past the low-water mark (5% free), short of full.
    const before = (await b.status()).pool!.data!;
    fs.writeFileSync(simMounted(b.stateDir, path.join(b.mnt, 'd1'), 'big.bin'), Buffer.alloc(Math.ceil(0.97 * before.totalBytes) - before.usedBytes, 1));
    await b.sim.sync(path.join(b.mnt, 'd1'));
    const run = await waitFor('a run for the pool event', () => reporter.messages.find((m) => m.code === 'watch.run' && m.reasons.includes('pool-event')));
    expect(run.code === 'watch.run' && run.reasons).toEqual(['pool-event']);
    await waitFor('the pool grown', () => reporter.messages.some((m) => m.code === 'pool.grown'));
    expect(reporter.messages.filter((m) => m.code === 'pool.use-warning').map((m) => m.code === 'pool.use-warning' && m.level)).toEqual([95]);
  });

  it('growPool: grows file, loop and live table; refuses to shrink; a grow interrupted after its intent is finished by the next watcher run', async () => {
    const b = box(() => ({ d1: { layer: 'l1', state: 'activated' } }), TINY_POOL);
    await api.apply(b.file, { stateDir: b.stateDir, backend: 'sim', yes: true });

    const result = await mutating(b.stateDir, (s) => growPool(s, { dataBytes: 12 * MiB, metadataBytes: 6 * MiB }));
    expect(result).toMatchObject({ reloaded: true, dataBlocks: (12 * MiB) / (64 * 1024) });
    expect((await b.status()).pool).toMatchObject({ active: true, data: { totalBytes: 12 * MiB }, metadata: { totalBytes: 6 * MiB } });
    const loop = await b.sim.loopFind(path.join(b.stateDir, 'data.img'));
    expect(loop!.sizeBytes).toBe(12 * MiB);

    await expect(mutating(b.stateDir, (s) => growPool(s, { dataBytes: 10 * MiB }))).rejects.toThrow(UserError);
    await expect(mutating(b.stateDir, (s) => growPool(s, {}))).rejects.toThrow(/nothing to grow/);

    // A crash after the intent was logged: only the intent is in the log.
    await mutating(b.stateDir, (s) =>
      s.append([
        {
          type: 'step.intent',
          stepId: 'crashed:pool.grow',
          op: POOL_GROW_OP,
          target: 'pool',
          args: {
            dmName: 'thinlayer-w-pool',
            data: { kind: 'file', file: 'data.img', sizeBytes: 8 * MiB },
            grow: [{ role: 'data', file: 'data.img', fromBytes: 12 * MiB, toBytes: 16 * MiB }],
          },
        },
      ]),
    );
    expect((await b.status()).pendingSteps).toBe(1);
    const w = startWatch(b);
    await waitFor('the interrupted grow finished', () => w.messages.some((m) => m.code === 'watch.run-done'));
    expect(w.messages.find((m) => m.code === 'pool.grown')).toMatchObject({ role: 'data', toBytes: 16 * MiB });
    const done = (await b.events()).find((e) => e.type === 'step.done' && e.stepId === 'crashed:pool.grow');
    expect(done).toMatchObject({ recovered: true, result: { reloaded: true } });
    expect((await b.status()).pool!.data!.totalBytes).toBe(16 * MiB);
    expect((await b.status()).pendingSteps).toBe(0);
  });
});
