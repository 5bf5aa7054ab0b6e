// thinlayer watch on the simulated kernel: edits, drift, signals, requests, the lock, stopping.

import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { request } from 'node:http';
import * as api from '../../src/api/index.ts';
import { acquireLock } from '../../src/events/lock.ts';
import { openStateDir } from '../../src/events/state-dir.ts';
import { requestReconcile } from '../../src/watch/requests.ts';
import { box, deviceStates, startWatch, watchManifest } from './sim-harness.ts';
import { writeManifest } from '../builders/manifest.ts';
import { waitFor } from './helpers.ts';
import { simMounted } from '../sim-mounts.ts';

const same = (a: unknown) => (b: unknown) => JSON.stringify(a) === JSON.stringify(b);

describe('thinlayer watch on the simulated kernel', () => {
  it('picks up manifest edits saved by rename, keeps the last valid manifest through an invalid edit, and holds back deletions until confirmed', async () => {
    const b = box(() => ({ d1: { layer: 'l1', state: 'activated' } }));
    const w = startWatch(b);
    await waitFor('d1 activated', async () => same([['d1', 'activated']])(await deviceStates(b)));

    b.write({ d1: { layer: 'l1', state: 'activated' }, d2: { layer: 'l1', state: 'mounted', mountpoint: `${b.mnt}/d2` } });
    await waitFor('d2 mounted after the edit', async () =>
      same([
        ['d1', 'activated'],
        ['d2', 'mounted'],
      ])(await deviceStates(b)),
    );
    expect((await b.events()).filter((e) => e.type === 'desired.set')).toHaveLength(2);

    // An invalid edit: reported with the manifest's own message, the last valid state kept.
    b.write({ d1: { layer: 'nosuchlayer', state: 'activated' } });
    const invalid = await waitFor('the invalid edit reported', () => w.messages.find((m) => m.code === 'watch.manifest-invalid'));
    expect(invalid.error).toContain('nosuchlayer');
    expect(invalid.error).toContain('m.yaml');
    expect(invalid.keeping).toBe('last-valid');
    // Drift repair goes on with the last valid manifest.
    await b.sim.unmount(`${b.mnt}/d2`);
    await waitFor('d2 mounted again', async () =>
      same([
        ['d1', 'activated'],
        ['d2', 'mounted'],
      ])(await deviceStates(b)),
    );
    expect(w.messages.filter((m) => m.code === 'watch.manifest-invalid')).toHaveLength(1); // said once, not at every run
    expect((await b.events()).filter((e) => e.type === 'desired.set')).toHaveLength(2);

    // An edit that deletes d2 waits for confirmation; d2 stays.
    b.write({ d1: { layer: 'l1', state: 'activated' } });
    const held = await waitFor('the deletion held back', () => w.messages.find((m) => m.code === 'watch.needs-confirmation'));
    expect(held.deletes).toEqual(['device:d2']);
    await w.moreRuns(2);
    expect(await deviceStates(b)).toEqual([
      ['d1', 'activated'],
      ['d2', 'mounted'],
    ]);
    expect(fs.existsSync(simMounted(b.stateDir, path.join(b.mnt, 'd2')))).toBe(true);

    // `apply --yes` confirms it; the watcher carries on with the confirmed state.
    await api.apply(b.file, { stateDir: b.stateDir, backend: 'sim', yes: true });
    expect(await deviceStates(b)).toEqual([['d1', 'activated']]);
    expect((await b.status()).unwanted).toEqual([]);
    await w.moreRuns(2);
    expect(await deviceStates(b)).toEqual([['d1', 'activated']]);
    expect(await w.stop()).toBe(0);
    expect(w.stderr()).toBe('');
  });

  it('restores a device removed or unmounted behind its back, and never touches a device it does not own', async () => {
    const b = box((mnt) => ({ d1: { layer: 'l1', state: 'mounted', mountpoint: `${mnt}/d1` }, d2: { layer: 'l1', state: 'activated' } }));
    const w = startWatch(b);
    await waitFor('converged', async () =>
      same([
        ['d1', 'mounted'],
        ['d2', 'activated'],
      ])(await deviceStates(b)),
    );
    fs.writeFileSync(simMounted(b.stateDir, path.join(b.mnt, 'd1'), 'kept.txt'), 'data\n');

    await b.sim.create('someone-else', 'other-owner-1');
    await b.sim.remove('thinlayer-w-dev-d2');
    expect(await deviceStates(b)).toEqual([
      ['d1', 'mounted'],
      ['d2', 'created'],
    ]);
    await waitFor('d2 activated again', async () =>
      same([
        ['d1', 'mounted'],
        ['d2', 'activated'],
      ])(await deviceStates(b)),
    );

    await b.sim.unmount(path.join(b.mnt, 'd1'));
    expect(await deviceStates(b)).toEqual([
      ['d1', 'activated'],
      ['d2', 'activated'],
    ]);
    await waitFor('d1 mounted again', async () =>
      same([
        ['d1', 'mounted'],
        ['d2', 'activated'],
      ])(await deviceStates(b)),
    );
    expect(fs.readFileSync(simMounted(b.stateDir, path.join(b.mnt, 'd1'), 'kept.txt'), 'utf8')).toBe('data\n');

    await w.moreRuns(2);
    expect(await b.sim.info('someone-else')).toMatchObject({ uuid: 'other-owner-1', liveTable: false, suspended: false });
    const drifts = w.messages.filter((m) => m.code === 'step.done').map((m) => m.step.op);
    expect(drifts).toContain('thin.activate');
    expect(drifts).toContain('fs.mount');
    expect(drifts).not.toContain('thin.delete');
  });

  it('runs on SIGHUP and on a request from another command, not only on its timer', async () => {
    const b = box(() => ({ d1: { layer: 'l1', state: 'activated' } }));
    const w = startWatch(b, { intervalMs: 3_600_000 });
    await waitFor('the first run', () => w.runsEnded() === 1);
    expect(w.messages.find((m) => m.code === 'watch.run')?.reasons).toEqual(['start']);

    process.kill(process.pid, 'SIGHUP');
    await waitFor('a run for the hangup', () => w.messages.some((m) => m.code === 'watch.run' && m.reasons.includes('hangup')));

    await requestReconcile(await openStateDir(b.stateDir), 'layers');
    await waitFor('a run for the request', () => w.messages.some((m) => m.code === 'watch.run' && m.reasons.includes('request')));
    await waitFor('the runs to end', () => w.runsEnded() === 3);
    // Each trigger was served by its own run, and nothing else ran.
    expect(w.messages.filter((m) => m.code === 'watch.run').map((m) => m.reasons)).toEqual([['start'], ['hangup'], ['request']]);
  });

  it('takes the lock only while it runs: other commands get it, and it waits for them', async () => {
    const b = box(() => ({ d1: { layer: 'l1', state: 'activated' } }));
    startWatch(b);
    await waitFor('converged', async () => same([['d1', 'activated']])(await deviceStates(b)));

    const lock = await acquireLock(await openStateDir(b.stateDir), { command: 'test', waitMs: 10_000 });
    try {
      await b.sim.remove('thinlayer-w-dev-d1');
      // While another command holds the lock, the watcher changes nothing.
      await new Promise((r) => setTimeout(r, 300));
      expect(await deviceStates(b)).toEqual([['d1', 'created']]);
    } finally {
      await lock.release();
    }
    await waitFor('d1 restored once the lock is free', async () => same([['d1', 'activated']])(await deviceStates(b)));
  });

  it('in the same process as the library: destroy refuses while it runs, and destroy with force stops it first, so nothing is made again', async () => {
    const b = box(() => ({ d1: { layer: 'l1', state: 'activated' } }));
    const w = startWatch(b);
    await waitFor('converged', async () => same([['d1', 'activated']])(await deviceStates(b)));
    await expect(api.destroy({ stateDir: b.stateDir, backend: 'sim', yes: true })).rejects.toMatchObject({ code: 'E_HELD' });
    expect(await deviceStates(b)).toEqual([['d1', 'activated']]);

    const result = await api.destroy({ stateDir: b.stateDir, backend: 'sim', yes: true, force: true });
    expect(result?.outcome).toBe('converged');
    expect(await w.exit).toBe(0);
    expect(w.messages.map((m) => m.code)).toContain('holder.stop-requested');
    await new Promise((r) => setTimeout(r, 300)); // six intervals of the stopped watch
    expect(await deviceStates(b)).toEqual([]);
    expect((await b.events()).filter((e) => e.type === 'run.started').at(-1)).toMatchObject({ command: 'destroy' });
  });

  it('stops after the current step on SIGTERM (here: its signal), with the step recorded, and exits 0', async () => {
    const b = box((mnt) => ({ d1: { layer: 'l1', state: 'mounted', mountpoint: `${mnt}/d1` }, d2: { layer: 'l1', state: 'activated' } }));
    const w = startWatch(b, { onMessage: (m, stop) => m.code === 'step.start' && m.step.op === 'pool.attach' && stop() });
    expect(await w.exit).toBe(0);
    const events = await b.events();
    const steps = events.filter((e) => e.type === 'step.intent' || e.type === 'step.done').map((e) => `${e.type} ${'op' in e ? e.op : ''}`);
    // The step in progress when the signal came was finished and recorded; nothing after it began.
    expect(steps).toEqual(['step.intent pool.files', 'step.done pool.files', 'step.intent pool.attach', 'step.done pool.attach']);
    expect(events.at(-1)).toMatchObject({ type: 'run.finished', outcome: 'interrupted' });
    expect((await b.status()).pendingSteps).toBe(0);
    expect(w.messages.at(-1)).toMatchObject({ code: 'watch.stopped', runs: 1 });

    // A new watcher carries on from there.
    const again = startWatch(b);
    await waitFor('converged by the next watcher', async () =>
      same([
        ['d1', 'mounted'],
        ['d2', 'activated'],
      ])(await deviceStates(b)),
    );
    expect(await again.stop()).toBe(0);
  });

  it('serves devices by state, pool use and run counts at its metrics endpoint', async () => {
    const b = box((mnt) => ({ d1: { layer: 'l1', state: 'mounted', mountpoint: `${mnt}/d1` }, d2: { layer: 'l1', state: 'activated' } }));
    const w = startWatch(b, { metricsPort: 0 });
    const started = await waitFor('the start message', () => w.messages.find((m) => m.code === 'watch.started'));
    expect(started.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    await waitFor('two runs', () => w.runsEnded() >= 2);
    const body = await new Promise<string>((resolve, reject) => {
      request(started.metricsUrl, (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (c: string) => (text += c));
        res.on('end', () => resolve(text));
      })
        .on('error', reject)
        .end();
    });
    const lines = body.split('\n');
    expect(lines).toContain('thinlayer_devices{state="mounted"} 1');
    expect(lines).toContain('thinlayer_devices{state="activated"} 1');
    expect(lines).toContain('thinlayer_pool_active{pool="w"} 1');
    expect(lines).toContain('thinlayer_pool_data_size_bytes{pool="w"} 67108864');
    expect(lines).toContain('thinlayer_reconcile_failures_total 0');
    expect(Number(lines.find((l) => l.startsWith('thinlayer_reconcile_runs_total '))!.split(' ')[1])).toBeGreaterThanOrEqual(2);
  });

  it('keeps the layers apply made from a source: the content it resolved is recorded, nothing is rebuilt or held back', async () => {
    const b = box(() => ({}));
    fs.mkdirSync(path.join(b.root, 'conf', 'rootfs'));
    fs.writeFileSync(path.join(b.root, 'conf', 'rootfs', 'hello.txt'), 'hello\n');
    writeManifest(b.file, { ...watchManifest({ d1: { layer: 'l1', state: 'activated' } }), layers: { l1: { source: 'rootfs' } } });
    await api.apply(b.file, { stateDir: b.stateDir, backend: 'sim', yes: true });
    const applied = await b.events();
    const recorded = applied.filter((e) => e.type === 'desired.set').at(-1);
    expect(recorded).toMatchObject({ content: { units: [expect.objectContaining({ label: 'l1', content: expect.objectContaining({ kind: 'dir' }) })] } });

    const w = startWatch(b);
    await w.moreRuns(2);
    const after = (await b.events()).slice(applied.length);
    // The same manifest and the same content: no desired state recorded again, no step, no question.
    expect(after.filter((e) => e.type === 'desired.set' || e.type === 'step.intent')).toEqual([]);

    // The source changes in place and apply records its new content while the watcher runs: the
    // watcher goes on from what apply recorded, and does not take the layer back to the old content.
    fs.writeFileSync(path.join(b.root, 'conf', 'rootfs', 'hello.txt'), 'hello again\n');
    await api.apply(b.file, { stateDir: b.stateDir, backend: 'sim', yes: true });
    const reapplied = await b.events();
    const content = (e: (typeof reapplied)[number] | undefined) => (e?.type === 'desired.set' ? e.content : undefined);
    expect(content(reapplied.filter((e) => e.type === 'desired.set').at(-1))?.top.l1).not.toBe(content(recorded)?.top.l1);
    await w.moreRuns(2);
    await w.stop();
    expect((await b.events()).slice(reapplied.length).filter((e) => e.type === 'desired.set' || e.type === 'step.intent')).toEqual([]);
    expect(w.messages.filter((m) => m.code === 'watch.needs-confirmation' || m.code === 'watch.run-failed')).toEqual([]);
    expect(await deviceStates(b)).toEqual([['d1', 'activated']]);
  });

  it('refuses to start on an invalid manifest, with exit 2 and the manifest message', async () => {
    const b = box(() => ({ d1: { layer: 'missing' } }));
    const w = startWatch(b);
    expect(await w.exit).toBe(2);
    expect(w.stderr()).toContain('missing');
    expect(fs.existsSync(path.join(b.stateDir, 'events.ndjson'))).toBe(false); // refused before anything was recorded
  });
});
