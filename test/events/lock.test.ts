import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it, onTestFinished } from 'vitest';
import { StateError, UserError } from '../../src/errors/index.ts';
import { EventLog } from '../../src/events/log.ts';
import { acquireLock, isLockHolderAlive, readLockHolder, StateDirLockedError, type Lock } from '../../src/events/lock.ts';
import type { StateDir } from '../../src/events/state-dir.ts';
import { eventsModule, READ_LINE_SNIPPET, spawnSnippet, tempStateDir } from './helpers.ts';

/** A pid no process can have: above the largest pid_max Linux allows. */
const NEVER_A_PID = 4_194_304 + 1;

function lockDir(stateDir: StateDir): string {
  return stateDir.path('lock');
}

function holderFiles(stateDir: StateDir): string[] {
  return fs.existsSync(lockDir(stateDir)) ? fs.readdirSync(lockDir(stateDir)) : [];
}

/** Puts a holder file in place by hand, as a process that then died would have left it. */
function writeHolder(stateDir: StateDir, content: string, token = 'abcdef0123'): void {
  fs.mkdirSync(lockDir(stateDir), { recursive: true, mode: 0o700 });
  fs.writeFileSync(`${lockDir(stateDir)}/holder-${token}.json`, content);
}

async function acquire(stateDir: StateDir, command: string, waitMs = 0): Promise<Lock> {
  const lock = await acquireLock(stateDir, { command, waitMs, pollMs: 5 });
  onTestFinished(() => lock.release());
  return lock;
}

/** A second process that takes the lock, says `held <pid>`, and releases it when told `release`. */
function holderProcess(stateDir: StateDir, command = 'apply') {
  return spawnSnippet(`
    ${READ_LINE_SNIPPET}
    const { openStateDir } = await import(${JSON.stringify(eventsModule('state-dir.ts'))});
    const { acquireLock } = await import(${JSON.stringify(eventsModule('lock.ts'))});
    const lock = await acquireLock(await openStateDir(${JSON.stringify(stateDir.root)}), { command: ${JSON.stringify(command)}, waitMs: 0 });
    console.log('held ' + process.pid);
    if ((await nextLine()) === 'release') { await lock.release(); console.log('released'); }
    process.exit(0);
  `);
}

describe('acquireLock', () => {
  it('writes the holder (pid, command, since, start time) and removes the file on release', async () => {
    const stateDir = await tempStateDir();
    const lock = await acquire(stateDir, 'apply');
    expect(lock.holder).toMatchObject({ pid: process.pid, command: 'apply' });
    expect(lock.holder.startTime).toMatch(/^\d+$/);
    expect(lock.holder.bootId).toMatch(/^[0-9a-f-]{36}$/);
    expect(lock.tookOverFrom).toBeUndefined();
    expect(await readLockHolder(stateDir)).toEqual(lock.holder);
    expect(holderFiles(stateDir)).toHaveLength(1);
    expect(fs.statSync(`${lockDir(stateDir)}/${holderFiles(stateDir)[0]}`).mode & 0o777).toBe(0o600);
    await lock.release();
    await lock.release();
    expect(fs.existsSync(lockDir(stateDir))).toBe(false);
    expect(await readLockHolder(stateDir)).toBeNull();
    expect(fs.readdirSync(stateDir.root)).toEqual([]); // no drafts left behind
  });

  it('waits for a live holder in another process, then fails with E_LOCKED naming it', async () => {
    const stateDir = await tempStateDir();
    const holder = holderProcess(stateDir, 'apply');
    await holder.line('held');

    const attempt = acquireLock(stateDir, { command: 'up', waitMs: 150, pollMs: 10 });
    await expect(attempt).rejects.toThrow(StateDirLockedError);
    const error = (await attempt.catch((e: unknown) => e)) as StateDirLockedError;
    expect(error).toBeInstanceOf(StateError);
    expect(error.code).toBe('E_LOCKED');
    expect(error.holder.pid).toBe(holder.pid);
    expect(error.message).toMatch(
      new RegExp(`^state dir ${stateDir.root} is locked by pid ${holder.pid} \\(thinlayer apply\\) since \\d{4}-.*; wait for it to finish or stop it$`),
    );
    expect(await isLockHolderAlive(await readLockHolder(stateDir))).toBe(true);
  });

  it('gets the lock once a live holder releases it while it waits', async () => {
    const stateDir = await tempStateDir();
    const holder = holderProcess(stateDir);
    await holder.line('held');
    let settled = false;
    const attempt = acquireLock(stateDir, { command: 'up', waitMs: 20_000, pollMs: 5 }).finally(() => (settled = true));
    await sleep(50); // let it poll a few times against the live holder
    expect(settled).toBe(false); // the child holds the lock until told to release it
    holder.send('release');
    const lock = await attempt;
    onTestFinished(() => lock.release());
    await holder.line('released');
    expect(lock.tookOverFrom).toBeUndefined(); // a clean handover, not a takeover
    expect((await readLockHolder(stateDir))?.pid).toBe(process.pid);
  });

  it('takes over the lock of a holder killed with SIGKILL, and says from whom', async () => {
    const stateDir = await tempStateDir();
    const holder = holderProcess(stateDir, 'apply');
    await holder.line('held');
    const held = await readLockHolder(stateDir);
    holder.process.kill('SIGKILL');
    expect((await holder.exited).signal).toBe('SIGKILL');
    expect(holderFiles(stateDir)).toHaveLength(1); // the dead holder's file is still there
    expect(await isLockHolderAlive(held)).toBe(false);

    const lock = await acquire(stateDir, 'up');
    expect(lock.tookOverFrom).toEqual(held);
    expect(lock.tookOverFrom?.pid).toBe(holder.pid);
    expect(await readLockHolder(stateDir)).toEqual(lock.holder);
  });

  it('counts a lock whose pid now belongs to a process started at another time as stale', async () => {
    const stateDir = await tempStateDir();
    const reused = { pid: process.pid, command: 'apply', since: '2026-01-01T00:00:00.000Z', startTime: '1' };
    writeHolder(stateDir, JSON.stringify(reused));
    const lock = await acquire(stateDir, 'up');
    expect(lock.tookOverFrom).toEqual(reused);
  });

  it('counts a lock taken before the last boot as stale, even when pid and start time match', async () => {
    const stateDir = await tempStateDir();
    const ours = await acquire(stateDir, 'probe');
    await ours.release();
    const beforeReboot = { ...ours.holder, bootId: '00000000-0000-0000-0000-000000000000' };
    writeHolder(stateDir, JSON.stringify(beforeReboot));
    expect(await isLockHolderAlive(beforeReboot)).toBe(false);
    expect(await isLockHolderAlive(ours.holder)).toBe(true);
    const lock = await acquire(stateDir, 'up');
    expect(lock.tookOverFrom).toEqual(beforeReboot);
  });

  it('counts a lock file that does not parse (a torn write) as stale', async () => {
    const stateDir = await tempStateDir();
    writeHolder(stateDir, '{"pid":12');
    expect(await readLockHolder(stateDir)).toBeNull();
    const lock = await acquire(stateDir, 'up');
    expect(lock.tookOverFrom).toMatchObject({ pid: 0, command: expect.stringContaining('unreadable lock file') });
  });

  it('lets exactly one of many racing waiters take over a stale lock', async () => {
    const stateDir = await tempStateDir();
    for (let round = 0; round < 20; round++) {
      const stale = { pid: NEVER_A_PID, command: 'apply', since: `round ${round}` };
      writeHolder(stateDir, JSON.stringify(stale), `${round}0`);
      const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => acquireLock(stateDir, { command: `racer-${i}`, waitMs: 0 })));
      const winners = results.filter((r): r is PromiseFulfilledResult<Lock> => r.status === 'fulfilled');
      const losers = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      expect(winners).toHaveLength(1);
      expect(losers.map((r) => (r.reason as StateError).code)).toEqual(Array(7).fill('E_LOCKED'));
      const [winner] = winners.map((w) => w.value);
      expect(winner.tookOverFrom).toEqual(stale);
      expect(await readLockHolder(stateDir)).toEqual(winner.holder);
      await winner.release();
      expect(fs.readdirSync(stateDir.root)).toEqual([]); // stale files moved aside are gone too
    }
  });

  it('lets exactly one of several processes racing for a stale lock win it', async () => {
    const stateDir = await tempStateDir();
    const stale = { pid: NEVER_A_PID, command: 'apply', since: '2026-01-01T00:00:00.000Z' };
    writeHolder(stateDir, JSON.stringify(stale));
    const racers = Array.from({ length: 3 }, () =>
      spawnSnippet(`
        ${READ_LINE_SNIPPET}
        const { openStateDir } = await import(${JSON.stringify(eventsModule('state-dir.ts'))});
        const { acquireLock } = await import(${JSON.stringify(eventsModule('lock.ts'))});
        const stateDir = await openStateDir(${JSON.stringify(stateDir.root)});
        console.log('ready');
        await nextLine();
        try {
          const lock = await acquireLock(stateDir, { command: 'race', waitMs: 0 });
          console.log('result won ' + JSON.stringify(lock.tookOverFrom ?? null));
        } catch (e) {
          console.log('result lost ' + e.code);
        }
        await nextLine(); // the winner holds on until the test has looked
        process.exit(0);
      `),
    );
    await Promise.all(racers.map((r) => r.line('ready')));
    for (const r of racers) r.send('go');
    const results = await Promise.all(racers.map((r) => r.line('result')));
    const won = results.filter((r) => r.startsWith('result won'));
    expect(won).toEqual([`result won ${JSON.stringify(stale)}`]);
    expect(results.filter((r) => r === 'result lost E_LOCKED')).toHaveLength(2);
    const winner = racers[results.indexOf(won[0])];
    expect((await readLockHolder(stateDir))?.pid).toBe(winner.pid);
  });

  it('does not delete a lock that is no longer its own on release', async () => {
    const stateDir = await tempStateDir();
    const lock = await acquire(stateDir, 'apply');
    // Someone judged this process dead and took over: its holder file is gone, another is in place.
    const successor = { pid: process.pid, command: 'up', since: new Date().toISOString() };
    for (const name of holderFiles(stateDir)) fs.rmSync(`${lockDir(stateDir)}/${name}`);
    writeHolder(stateDir, JSON.stringify(successor));
    await lock.release();
    expect(await readLockHolder(stateDir)).toEqual(successor);
  });

  it('refuses a `lock` that is a plain file rather than guess whose it is', async () => {
    const stateDir = await tempStateDir();
    fs.writeFileSync(lockDir(stateDir), '{}');
    await expect(acquireLock(stateDir, { command: 'up', waitMs: 0 })).rejects.toMatchObject({ code: 'E_LOCK_BROKEN' });
    expect(await readLockHolder(stateDir)).toBeNull();
  });

  it('waits with sleeps for a stray entry in the lock directory, honours its deadline and names the entry', async () => {
    const stateDir = await tempStateDir();
    fs.mkdirSync(lockDir(stateDir), { mode: 0o700 });
    fs.writeFileSync(`${lockDir(stateDir)}/notes.txt`, 'left here by hand');
    const error = await acquireLock(stateDir, { command: 'up', waitMs: 100, pollMs: 10 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StateError);
    expect(error).toMatchObject({ code: 'E_LOCK_BROKEN' });
    expect((error as Error).message).toContain('"notes.txt"');
    expect(fs.readdirSync(lockDir(stateDir))).toEqual(['notes.txt']); // not removed: it is not ours
    expect(fs.readdirSync(stateDir.root)).toEqual(['lock']); // the draft is gone
  });

  it('stops waiting when its signal aborts (SIGTERM in the CLI), with nothing taken', async () => {
    const stateDir = await tempStateDir();
    fs.mkdirSync(lockDir(stateDir), { mode: 0o700 });
    fs.writeFileSync(`${lockDir(stateDir)}/stray`, '');
    const controller = new AbortController();
    const attempt = acquireLock(stateDir, { command: 'up', waitMs: 600_000, pollMs: 5, signal: controller.signal });
    await sleep(30);
    controller.abort();
    await expect(attempt).rejects.toMatchObject({ code: 'E_LOCK_WAIT_STOPPED' });
    expect(fs.readdirSync(lockDir(stateDir))).toEqual(['stray']);
  });

  it('a process waiting on a stray entry exits on SIGTERM', async () => {
    const stateDir = await tempStateDir();
    fs.mkdirSync(lockDir(stateDir), { mode: 0o700 });
    fs.writeFileSync(`${lockDir(stateDir)}/stray`, '');
    const waiter = spawnSnippet(`
      const { openStateDir } = await import(${JSON.stringify(eventsModule('state-dir.ts'))});
      const { acquireLock } = await import(${JSON.stringify(eventsModule('lock.ts'))});
      const controller = new AbortController();
      process.once('SIGTERM', () => controller.abort());
      const dir = await openStateDir(${JSON.stringify(stateDir.root)});
      console.log('waiting');
      await acquireLock(dir, { command: 'up', waitMs: 600_000, signal: controller.signal }).catch((e) => console.log('stopped ' + e.code));
      process.exit(0);
    `);
    await waiter.line('waiting');
    await sleep(100);
    waiter.process.kill('SIGTERM');
    expect(await waiter.line('stopped')).toBe('stopped E_LOCK_WAIT_STOPPED');
    expect((await waiter.exited).code).toBe(0);
  });

  it('says once whom it waits for (pid, command, start) while another live process holds the lock', async () => {
    const stateDir = await tempStateDir();
    const holder = holderProcess(stateDir, 'apply');
    await holder.line('held');
    const told: Array<{ pid: number; command: string; since: string }> = [];
    await expect(acquireLock(stateDir, { command: 'up', waitMs: 100, pollMs: 5, onWait: (h) => told.push(h) })).rejects.toMatchObject({ code: 'E_LOCKED' });
    expect(told).toHaveLength(1);
    expect(told[0]).toMatchObject({ pid: holder.pid, command: 'apply' });
    expect(told[0]!.since).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it('takes its default wait from THINLAYER_LOCK_WAIT_MS and refuses a bad value', async () => {
    const stateDir = await tempStateDir();
    await acquire(stateDir, 'apply');
    const saved = process.env.THINLAYER_LOCK_WAIT_MS;
    onTestFinished(() => {
      if (saved === undefined) delete process.env.THINLAYER_LOCK_WAIT_MS;
      else process.env.THINLAYER_LOCK_WAIT_MS = saved;
    });
    process.env.THINLAYER_LOCK_WAIT_MS = '0';
    await expect(acquireLock(stateDir, { command: 'up' })).rejects.toMatchObject({ code: 'E_LOCKED' });
    process.env.THINLAYER_LOCK_WAIT_MS = 'soon';
    await expect(acquireLock(stateDir, { command: 'up' })).rejects.toThrow(UserError);
  });

  it('cleans up drafts and moved-aside locks that dead processes left behind', async () => {
    const stateDir = await tempStateDir();
    fs.mkdirSync(stateDir.path(`.lock-new-${NEVER_A_PID}-abc123`));
    fs.writeFileSync(stateDir.path(`.lock-new-${NEVER_A_PID}-abc123/holder-12.json`), '{}');
    fs.mkdirSync(stateDir.path(`.lock-new-${process.pid}-abc123`)); // this process's own: kept
    fs.writeFileSync(stateDir.path('unrelated'), '');
    await acquire(stateDir, 'apply');
    expect(fs.readdirSync(stateDir.root).sort()).toEqual([`.lock-new-${process.pid}-abc123`, 'lock', 'unrelated']);
  });
});

describe('two processes appending under the lock', () => {
  it('produce one gapless seq with no duplicate', async () => {
    const stateDir = await tempStateDir();
    const perWorker = 40;
    // Worker a keeps its log open across lock holds (it must catch up on b's appends); worker b
    // opens the log afresh under every hold.
    const worker = (name: string, keepOpen: boolean) =>
      spawnSnippet(`
        const { openStateDir } = await import(${JSON.stringify(eventsModule('state-dir.ts'))});
        const { acquireLock } = await import(${JSON.stringify(eventsModule('lock.ts'))});
        const { EventLog } = await import(${JSON.stringify(eventsModule('log.ts'))});
        const stateDir = await openStateDir(${JSON.stringify(stateDir.root)});
        let log = ${keepOpen} ? await EventLog.open(stateDir) : null;
        for (let i = 0; i < ${perWorker}; i++) {
          const lock = await acquireLock(stateDir, { command: 'worker ${name}', waitMs: 60000, pollMs: 1 });
          const current = log ?? (await EventLog.open(stateDir));
          const body = (part) => ({ type: 'run.started', runId: '${name}:' + i + ':' + part, command: 'test', pid: process.pid });
          await current.append(i % 2 ? [body(0)] : [body(0), body(1)]);
          if (!log) await current.close();
          await lock.release();
        }
        console.log('done');
        process.exit(0);
      `);
    const a = worker('a', true);
    const b = worker('b', false);
    await Promise.all([a.line('done'), b.line('done')]);

    const log = await EventLog.open(stateDir);
    onTestFinished(() => log.close());
    const { events, tornTail } = await log.readAll(); // throws on any gap or repeat
    expect(tornTail).toBeNull();
    const expected = 2 * (perWorker / 2) * 3;
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: expected }, (_, i) => i + 1));
    const runIds = events.map((e) => (e.type === 'run.started' ? e.runId : ''));
    expect(new Set(runIds).size).toBe(expected);
    // Each batch is contiguous: part 1 directly follows its part 0.
    for (const [i, id] of runIds.entries()) if (id.endsWith(':1')) expect(runIds[i - 1]).toBe(id.replace(/:1$/, ':0'));
  });
});
