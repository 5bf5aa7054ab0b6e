// Holder records (src/events/holders.ts) and lock waiters (src/events/lock.ts): written whole and
// private, never through a symlink, stale when their process is gone or their pid reused.

import { describe, it, expect, onTestFinished } from 'vitest';
import { mkdtempSync, rmSync, statSync, writeFileSync, readFileSync, symlinkSync, mkdirSync, existsSync, lstatSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openStateDir } from '../../src/events/state-dir.ts';
import { claimHolder, liveHolder, liveHolders, requestStop, HolderRunningError } from '../../src/events/holders.ts';
import { acquireLock, describeThisProcess, liveWaiter } from '../../src/events/lock.ts';

async function stateDir() {
  const root = mkdtempSync(join(tmpdir(), 'thinlayer-holders-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  return openStateDir(join(root, 'state'));
}

describe('holder records', () => {
  it('are private (0600 in a 0700 directory), name this process, and go with release()', async () => {
    const dir = await stateDir();
    const claim = await claimHolder(dir, 'snapshotter', { socket: '/run/x.sock' });
    const file = dir.path('holders/snapshotter.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dir.path('holders')).mode & 0o777).toBe(0o700);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toMatchObject({ pid: process.pid, kind: 'snapshotter', socket: '/run/x.sock' });
    expect((await liveHolder(dir, 'snapshotter'))?.pid).toBe(process.pid);
    // No temporary file is left beside it.
    expect(readdirSync(dir.path('holders'))).toEqual(['snapshotter.json']);
    await claim.release();
    expect(existsSync(file)).toBe(false);
    expect(await liveHolders(dir)).toEqual([]);
  });

  it('refuses a second live holder of a kind, naming it; a record of a dead or reused pid is replaced', async () => {
    const dir = await stateDir();
    mkdirSync(dir.path('holders'), { mode: 0o700 });
    // pid 1 runs, but did not start at tick 1: a reused pid, not the holder.
    writeFileSync(dir.path('holders/watch.json'), JSON.stringify({ pid: 1, command: 'thinlayer watch', since: 'x', startTime: '1', kind: 'watch' }));
    expect(await liveHolder(dir, 'watch')).toBeNull();
    const claim = await claimHolder(dir, 'watch', { manifest: '/etc/m.yaml' });
    onTestFinished(() => claim.release());
    expect((await liveHolder(dir, 'watch'))?.pid).toBe(process.pid);

    // A live holder in another process (its description as it would write it): refused.
    const other = {
      ...(await describeThisProcess('thinlayer snapshotter')),
      kind: 'snapshotter',
      socket: '/run/a.sock',
      pid: process.ppid,
      startTime: undefined,
    };
    writeFileSync(dir.path('holders/snapshotter.json'), JSON.stringify(other));
    const refused = await claimHolder(dir, 'snapshotter').then(
      () => null,
      (e) => e,
    );
    expect(refused).toBeInstanceOf(HolderRunningError);
    expect(refused.message).toContain(`snapshotter pid ${process.ppid}`);
    expect(refused.message).toContain('socket /run/a.sock');
  });

  it('never follows a symlink: a linked record is refused (E_STATE_PATH), as every symlink in the state dir is, and its target left alone', async () => {
    const dir = await stateDir();
    mkdirSync(dir.path('holders'), { mode: 0o700 });
    const target = join(dir.root, '..', 'elsewhere.json');
    const live = { ...(await describeThisProcess('thinlayer snapshotter')), kind: 'snapshotter', pid: process.ppid, startTime: undefined };
    writeFileSync(target, JSON.stringify(live));
    symlinkSync(target, dir.path('holders/snapshotter.json'));
    await expect(liveHolder(dir, 'snapshotter')).rejects.toMatchObject({ code: 'E_STATE_PATH' });
    await expect(claimHolder(dir, 'snapshotter')).rejects.toMatchObject({ code: 'E_STATE_PATH' });
    expect(lstatSync(join(dir.root, 'holders/snapshotter.json')).isSymbolicLink()).toBe(true);
    expect(JSON.parse(readFileSync(target, 'utf8')).pid).toBe(process.ppid);
  });

  it('tells a holder of a stop request for it, and not of one for an earlier holder of its kind', async () => {
    const dir = await stateDir();
    const claim = await claimHolder(dir, 'watch');
    onTestFinished(() => claim.release());
    await requestStop(dir, { ...claim.record, startTime: 'earlier' }, 'destroy');
    const told: string[] = [];
    claim.watchForStop((r) => told.push(r.by));
    await new Promise((r) => setTimeout(r, 500));
    expect(told).toEqual([]);
    await requestStop(dir, claim.record, 'down');
    for (let i = 0; i < 50 && told.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(told).toEqual(['down']);
    await claim.release();
    expect(existsSync(dir.path('holders/watch.stop.json'))).toBe(false);
  });
});

describe('lock waiters', () => {
  it('a waiter announces itself while it waits and removes its file when it gets the lock; a dead waiter is no waiter', async () => {
    const dir = await stateDir();
    const first = await acquireLock(dir, { command: 'snapshotter', waitMs: 0 });
    const waiting = acquireLock(dir, { command: 'apply', waitMs: 5000, pollMs: 10 });
    for (let i = 0; i < 100 && (await liveWaiter(dir)) === null; i++) await new Promise((r) => setTimeout(r, 10));
    expect((await liveWaiter(dir))?.command).toBe('apply');
    // A yielding taker does not take the lock while the waiter waits, even once it is free.
    await first.release();
    const second = await waiting;
    expect(await liveWaiter(dir)).toBeNull();
    const yielding = acquireLock(dir, { command: 'snapshotter', waitMs: 5000, pollMs: 10, yieldToWaiters: true });
    await second.release();
    await (await yielding).release();

    // The file of a waiter that died: removed, not waited for.
    writeFileSync(dir.path('lock-waiters/waiter-0123abcd.json'), JSON.stringify({ pid: 1, command: 'apply', since: 'x', startTime: '1' }));
    expect(await liveWaiter(dir)).toBeNull();
    expect(existsSync(dir.path('lock-waiters/waiter-0123abcd.json'))).toBe(false);
    const quick = await acquireLock(dir, { command: 'snapshotter', waitMs: 0, yieldToWaiters: true });
    await quick.release();
  });
});
