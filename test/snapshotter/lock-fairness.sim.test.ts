// The lock under steady snapshotter load: 50 calls a second that change something (label updates,
// each a session's append), so the snapshotter's session never lingers idle. A process waiting for
// the lock announces itself (lock-waiters/), the snapshotter's session yields at its next request,
// and the waiter gets the lock; the snapshotter keeps answering throughout.

import { describe, it, expect, onTestFinished } from 'vitest';
import { spawn } from 'node:child_process';
import { box, startChild, poolManifest, BIN, type Client } from './harness.ts';
import { openStateDir } from '../../src/events/state-dir.ts';
import { acquireLock } from '../../src/events/lock.ts';

const LOCK_WAIT_MS = 20_000;

/** Label updates on `keys`, one every 20 ms (50 a second), until stopped; counts answers and failures. */
function steadyLoad(c: Client, keys: string[]) {
  let sent = 0;
  let answered = 0;
  const failures: string[] = [];
  const answeredAt: number[] = [];
  const timer = setInterval(() => {
    const key = keys[sent++ % keys.length];
    c.Update({ info: { name: key, labels: { n: String(sent) } }, update_mask: { paths: ['labels.n'] } }).then(
      () => (answered++, answeredAt.push(Date.now())),
      (e) => failures.push(String(e?.details ?? e)),
    );
  }, 20);
  return {
    get sent() {
      return sent;
    },
    get answered() {
      return answered;
    },
    failures,
    answeredAt,
    stop: () => clearInterval(timer),
  };
}

function cliAsync(stateDir: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [BIN, ...args, '--state-dir', stateDir, '--backend', 'sim'], {
      env: { ...process.env, THINLAYER_LOCK_WAIT_MS: String(LOCK_WAIT_MS) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    // 'close', not 'exit': at 'exit' the child's output may still be in the pipes.
    p.on('close', (code) => done({ code, stdout, stderr }));
  });
}

describe('the lock under steady snapshotter load', () => {
  it('a waiter gets the lock within its wait while 50 calls a second keep arriving, and the snapshotter keeps answering', async () => {
    const b = box(poolManifest({ layers: { os: {} }, devices: { dev1: { layer: 'os', state: 'activated' } } }));
    onTestFinished(() => b.cleanup());
    const run = await startChild(b);
    onTestFinished(() => run.stop());
    const c = run.client;
    const keys = ['k0', 'k1', 'k2', 'k3', 'k4'];
    for (const key of keys) await c.Prepare({ key, parent: '' });

    const load = steadyLoad(c, keys);
    onTestFinished(() => load.stop());
    await new Promise((r) => setTimeout(r, 1000)); // the load is steady: no idle linger anywhere

    // A waiter in this process, timed from its first try to the lock in hand.
    const dir = await openStateDir(b.stateDir);
    const asked = Date.now();
    let waitedFor: number | null = null;
    const lock = await acquireLock(dir, { command: 'apply', waitMs: LOCK_WAIT_MS, onWait: (h) => (waitedFor = h.pid) });
    const waitMs = Date.now() - asked;
    const answeredBefore = load.answered;
    await new Promise((r) => setTimeout(r, 300)); // calls that arrive now wait for the lock, they do not fail
    await lock.release();
    console.log(`lock wait under 50 snapshotter calls a second: ${waitMs} ms (the snapshotter held it: ${waitedFor !== null})`);
    expect(waitMs).toBeLessThan(LOCK_WAIT_MS);

    // A real apply, as a CLI process, under the same load: it converges.
    const applied = await cliAsync(b.stateDir, ['apply', '-f', b.manifest, '--yes', '--json']);
    expect(applied.code, applied.stderr).toBe(0);
    expect(JSON.parse(applied.stdout).outcome).toBe('converged');

    await new Promise((r) => setTimeout(r, 500));
    load.stop();
    await new Promise((r) => setTimeout(r, 500));
    // The snapshotter answered throughout: calls after the waiter had its turn, none failed.
    expect(load.failures).toEqual([]);
    expect(load.answered).toBeGreaterThan(answeredBefore);
    expect(load.answered).toBeGreaterThan(50);
    expect((await c.List({})).map((i) => i.name).sort()).toEqual(keys);
  });
});
