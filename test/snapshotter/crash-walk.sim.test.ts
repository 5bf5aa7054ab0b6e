// The snapshotter's crash walk: the snapshotter is killed with SIGKILL at every boundary (just
// before or after a kernel mutation or an event append, THINLAYER_CRASH_POINT=k) of a Prepare from a
// committed parent, a Prepare from it of a larger root (its size label: made at 640M, its filesystem
// grown in a private mount; once it exists, its root is read back: the size, and the parent's file), a Commit, a Prepare from the base (with its lost+found taken out: a mount and
// an unmount), and the Remove of a committed and of two active snapshots, after a committed
// snapshot's Usage (its device activated for the reading, then deactivated). After each
// crash a restarted snapshotter must show containerd the state before or after each call (never a
// half-made snapshot), hold no thin id the log does not own and no intent unsettled, have its active
// snapshots activated, leave doctor nothing to report, and carry on to the end of the calls. The
// clean stop after the calls is walked too (it logs the end of the process's run).

import { describe, it, expect, onTestFinished } from 'vitest';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { box, startChild, startHere, type Client } from './harness.ts';
import * as api from '../../src/api/index.ts';
import { poolThinIds } from '../e2e/pool-thin-ids.ts';
import { doctorProblems } from '../doctor-problems.ts';
import { simRoot, writeInRoot } from './sim-root.ts';
import { SIZE_LABEL } from '../../src/snapshotter/root-size.ts';

const MAX_POINTS = 300;

type Op = (c: Client) => Promise<unknown>;
const OPS: Array<[string, Op]> = [
  // A committed snapshot's Usage activates its device for the reading and deactivates it after.
  ['Usage of c1', (c) => c.Usage({ key: 'c1' })],
  ['Prepare x from c1', (c) => c.Prepare({ key: 'x', parent: 'c1' })],
  ['Prepare z from c1 at 640M', (c) => c.Prepare({ key: 'z', parent: 'c1', labels: { [SIZE_LABEL]: '640M' } })],
  ['Commit x as c2', (c) => c.Commit({ name: 'c2', key: 'x' })],
  ['Prepare y from the base', (c) => c.Prepare({ key: 'y', parent: '' })],
  ['Remove c2', (c) => c.Remove({ key: 'c2' })],
  ['Remove live', (c) => c.Remove({ key: 'live' })],
  ['Remove y', (c) => c.Remove({ key: 'y' })],
];
/** What containerd may see: the state before the first call, and after each. */
const STATES = [
  ['c1:COMMITTED:', 'live:ACTIVE:c1'],
  ['c1:COMMITTED:', 'live:ACTIVE:c1'],
  ['c1:COMMITTED:', 'live:ACTIVE:c1', 'x:ACTIVE:c1'],
  ['c1:COMMITTED:', 'live:ACTIVE:c1', 'x:ACTIVE:c1', 'z:ACTIVE:c1'],
  ['c1:COMMITTED:', 'c2:COMMITTED:c1', 'live:ACTIVE:c1', 'z:ACTIVE:c1'],
  ['c1:COMMITTED:', 'c2:COMMITTED:c1', 'live:ACTIVE:c1', 'y:ACTIVE:', 'z:ACTIVE:c1'],
  ['c1:COMMITTED:', 'live:ACTIVE:c1', 'y:ACTIVE:', 'z:ACTIVE:c1'],
  ['c1:COMMITTED:', 'y:ACTIVE:', 'z:ACTIVE:c1'],
  ['c1:COMMITTED:', 'z:ACTIVE:c1'],
];

const seen = async (c: Client) => (await c.List({})).map((i) => `${i.name}:${i.kind}:${i.parent}`).sort();

async function logFacts(stateDir: string) {
  const s = await api.Session.open({ stateDir, backend: 'sim', reporter: { notify() {} }, mutate: false, command: 'check' });
  try {
    const things = Object.values(s.state.things);
    return {
      thinIds: things.map((t) => t.thinId).sort((a, b) => a - b),
      deviceless: Object.keys(s.state.snapshots).filter((id) => !s.state.things[id]),
      recordless: things.filter((t) => t.kind === 'snapshot' && !s.state.snapshots[t.key]).map((t) => t.key),
      pending: Object.values(s.state.pending).map((p) => `${p.op} ${p.target}`),
    };
  } finally {
    await s.close();
  }
}

/** A copy of a directory, sparse files kept sparse (the pool's data file is 2 GiB of holes). */
function copyDir(from: string, to: string): void {
  rmSync(to, { recursive: true, force: true });
  const r = spawnSync('cp', ['-a', '--sparse=always', from, to], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`cp ${from} ${to}: ${r.stderr}`);
}

describe('snapshotter crash walk', () => {
  it('recovers from a SIGKILL at every boundary of Prepare, Commit and Remove', { timeout: 1_800_000 }, async () => {
    // The starting state is made once and put back before each k. It is put back at the same path:
    // the simulated kernel's state holds the absolute paths of the pool's files.
    const b = box();
    const template = `${b.root}.template`;
    onTestFinished(() => {
      b.cleanup();
      rmSync(template, { recursive: true, force: true });
    });
    const setup = await startHere(b);
    const [a] = (await setup.client.Prepare({ key: 'a', parent: '' })).mounts;
    await writeInRoot(b.stateDir, a.source, 'ext4', 'marker', 'written in c1');
    await setup.client.Commit({ name: 'c1', key: 'a' });
    await setup.client.Prepare({ key: 'live', parent: 'c1' });
    await setup.stop();
    copyDir(b.root, template);

    let k = 1;
    for (; k <= MAX_POINTS; k++) {
      copyDir(template, b.root);
      {
        const child = await startChild(b, { THINLAYER_CRASH_POINT: String(k) });
        let failedAt: string | null = null;
        let failure: unknown = null;
        for (const [name, op] of OPS) {
          try {
            await op(child.client);
          } catch (e) {
            failedAt = name;
            failure = e;
            break;
          }
        }
        if (failedAt === null) {
          // Every call completed without reaching k; the clean stop has boundaries of its own (its
          // run's run.finished): killed there, it is recovered from like any other crash.
          await child.stop();
          const end = await child.exit;
          if (end.signal !== 'SIGKILL') {
            // Past the last boundary.
            expect(end.code).toBe(0);
            break;
          }
          failedAt = 'the clean stop';
        }
        // A call fails because the process was killed, never for a reason of its own.
        const exit = await Promise.race([child.exit, new Promise<null>((r) => setTimeout(() => r(null), 20_000))]);
        if (exit === null) {
          child.proc.kill('SIGKILL');
          throw new Error(`crash point ${k}: ${failedAt} failed while the snapshotter ran on: ${String(failure)}; its stderr: ${(await child.exit).stderr}`);
        }
        child.client.close();
        expect(exit.signal, `crash point ${k} (${failedAt}): ${exit.stderr}`).toBe('SIGKILL');

        const after = await startHere(b);
        try {
          const state = await seen(after.client);
          const at = STATES.findIndex((s) => JSON.stringify(s) === JSON.stringify(state));
          expect(at, `crash point ${k} (${failedAt}): containerd sees ${state.join(', ')}`).toBeGreaterThanOrEqual(0);
          const facts = await logFacts(b.stateDir);
          expect(facts.deviceless, `crash point ${k}: records without a device`).toEqual([]);
          expect(facts.recordless, `crash point ${k}: devices without a record`).toEqual([]);
          expect(facts.pending, `crash point ${k}: intents left unsettled`).toEqual([]);
          expect(await poolThinIds(b.stateDir), `crash point ${k}: thin ids in the pool`).toEqual(facts.thinIds);
          const status = await api.status({ stateDir: b.stateDir, backend: 'sim' });
          for (const s of status.snapshots ?? []) expect(s.active, `crash point ${k}: ${s.key} active`).toBe(s.kind !== 'committed');
          // The log agrees with the kernel: doctor has nothing to report (a device the log calls active is).
          expect(await doctorProblems(b.stateDir), `crash point ${k} (${failedAt}): doctor`).toEqual([]);
          // The larger root, once containerd sees it, is whole: its size, and what its parent holds.
          if (state.includes('z:ACTIVE:c1'))
            expect(await simRoot(b.stateDir, 'z', 'ext4', 'marker'), `crash point ${k} (${failedAt}): z`).toMatchObject({
              deviceBytes: 640 * 2 ** 20,
              filesystemBytes: 640 * 2 ** 20,
              text: 'written in c1',
            });
          // containerd carries on from there.
          for (const [, op] of OPS.slice(at)) await op(after.client);
          expect(await seen(after.client)).toEqual(STATES[STATES.length - 1]);
        } finally {
          await after.stop();
        }
        expect(await poolThinIds(b.stateDir)).toEqual((await logFacts(b.stateDir)).thinIds);
      }
    }
    expect(k).toBeGreaterThan(20);
    expect(k).toBeLessThan(MAX_POINTS);
  });
});
