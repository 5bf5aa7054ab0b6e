// Reads (Stat, Mounts, List) are served from the serving process's projection, without the state
// dir's lock or a look at the log: the lock is not theirs to wait for, and what they see is what the
// log holds. Beside Prepares and Removes running at once, a read never shows a snapshot whose record
// is not yet in the log (a half-made one), and never misses one whose Prepare was answered and
// whose Remove has not begun.

import { describe, it, expect, onTestFinished } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { status as GrpcStatus } from '@grpc/grpc-js';
import { acquireLock } from '../../src/events/lock.ts';
import { openStateDir } from '../../src/events/state-dir.ts';
import { EVENT_LOG_FILE } from '../../src/events/log.ts';
import { box, ns, startHere } from './harness.ts';

const md = () => ns('reads');

/** Keys with a snapshot.set record in the log as it is on disk now. */
function keysInLog(stateDir: string): Set<string> {
  const keys = new Set<string>();
  for (const line of readFileSync(join(stateDir, EVENT_LOG_FILE), 'utf8').split('\n')) {
    if (!line.includes('"snapshot.set"')) continue;
    const key = /"key":"([^"]*)"/.exec(line.slice(line.indexOf('"snapshot.set"')))?.[1];
    if (key) keys.add(key);
  }
  return keys;
}

describe('snapshotter reads', () => {
  it('answer Stat, Mounts and List while another process holds the state dir lock', async () => {
    const b = box();
    onTestFinished(b.cleanup);
    const s = await startHere(b);
    onTestFinished(() => s.stop());
    await s.client.Prepare({ key: 'a', parent: '' }, md());
    // The snapshotter's session closes after its linger; then this lock is ours until released.
    const lock = await acquireLock(await openStateDir(b.stateDir), { command: 'test', waitMs: 30_000 });
    try {
      const stat = await s.client.Stat({ key: 'a' }, md());
      expect(stat.info.name).toBe('a');
      const mounts = await s.client.Mounts({ key: 'a' }, md());
      expect(mounts.mounts).toHaveLength(1);
      expect((await s.client.List({}, md())).map((i) => i.name)).toEqual(['a']);
      await expect(s.client.Stat({ key: 'missing' }, md())).rejects.toMatchObject({ code: GrpcStatus.NOT_FOUND });
    } finally {
      await lock.release();
    }
  });

  it('never show a snapshot the log does not hold, nor miss an answered one, beside Prepares and Removes', async () => {
    const b = box();
    onTestFinished(b.cleanup);
    const s = await startHere(b);
    onTestFinished(() => s.stop());
    const c = s.client;
    await c.Prepare({ key: 'layer-a', parent: '' }, md());
    await c.Commit({ name: 'layer', key: 'layer-a' }, md());

    // Per key: 'preparing' (sent), 'ready' (answered), 'removing' (Remove sent), 'gone' (answered).
    const stage = new Map<string, 'preparing' | 'ready' | 'removing' | 'gone'>();
    let writing = true;
    const problems: string[] = [];
    let seen = 0;

    const writer = async (w: number) => {
      for (let i = 0; i < 8; i++) {
        const key = `r-${w}-${i}`;
        stage.set(key, 'preparing');
        await c.Prepare({ key, parent: 'layer' }, md());
        stage.set(key, 'ready');
        await new Promise((r) => setTimeout(r, 3));
        stage.set(key, 'removing');
        await c.Remove({ key }, md());
        stage.set(key, 'gone');
      }
    };

    /** A read that found `key`: its record must be in the log already. */
    const found = (how: string, key: string) => {
      seen += 1;
      if (!keysInLog(b.stateDir).has(key)) problems.push(`${how} showed ${key}, which the log does not hold`);
    };

    const reader = async () => {
      while (writing) {
        for (const [key, before] of [...stage]) {
          if (before === 'gone') continue;
          for (const call of ['Stat', 'Mounts'] as const) {
            try {
              const res = await c[call]({ key }, md());
              if (call === 'Mounts' && res.mounts.length !== 1) problems.push(`Mounts of ${key} gave ${res.mounts.length} mounts`);
              found(call, key);
            } catch (e) {
              if ((e as { code?: number }).code !== GrpcStatus.NOT_FOUND) throw e;
              // Not found: right unless the key was answered before the read and no Remove has begun since.
              if (before === 'ready' && stage.get(key) === 'ready') problems.push(`${call} missed ${key}, answered and not being removed`);
            }
          }
        }
        const listedAt = new Map(stage);
        const listed = await c.List({}, md());
        for (const info of listed) if (info.name.startsWith('r-')) found('List', info.name);
        const names = new Set(listed.map((i) => i.name));
        for (const [key, before] of listedAt)
          if (before === 'ready' && stage.get(key) === 'ready' && !names.has(key)) problems.push(`List missed ${key}, answered and not being removed`);
      }
    };

    const readers = [reader(), reader()];
    try {
      await Promise.all([writer(0), writer(1), writer(2)]);
    } finally {
      writing = false;
    }
    await Promise.all(readers);
    expect(problems).toEqual([]);
    // The readers did see snapshots while they were being made and removed: the check was exercised.
    expect(seen).toBeGreaterThan(10);
    expect((await c.List({}, md())).map((i) => i.name)).toEqual(['layer']);
  });
});
