// `thinlayer snapshotter` on the simulated kernel, through a gRPC client of containerd's service
// definition: every call and every error code containerd's errdefs reads, namespaces, parallel
// requests, restarts (SIGTERM, SIGKILL, a simulated reboot), and apply beside it.

import { describe, it, expect, onTestFinished } from 'vitest';
import { statSync, existsSync, writeFileSync, readFileSync } from 'node:fs';
import { status as Code } from '@grpc/grpc-js';
import { box, startChild, startHere, ns, poolManifest, BIN, type Client } from './harness.ts';
import { spawnSync } from 'node:child_process';
import * as api from '../../src/api/index.ts';
import { poolThinIds } from '../e2e/pool-thin-ids.ts';
import { EventLog } from '../../src/events/log.ts';
import { openStateDir } from '../../src/events/state-dir.ts';
import { join } from 'node:path';

const code = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e) => e.code as number,
  );
const tsNs = (t: { seconds: string; nanos: number }) => BigInt(t.seconds) * 1_000_000_000n + BigInt(t.nanos);

async function ownedThinIds(stateDir: string): Promise<number[]> {
  const s = await api.Session.open({ stateDir, backend: 'sim', reporter: { notify() {} }, mutate: false, command: 'check' });
  try {
    return Object.values(s.state.things)
      .map((t) => t.thinId)
      .sort((a, b) => a - b);
  } finally {
    await s.close();
  }
}

function cli(b: ReturnType<typeof box>, args: string[]) {
  return spawnSync(process.execPath, [BIN, ...args, '--state-dir', b.stateDir, '--backend', 'sim'], {
    encoding: 'utf8',
    env: { ...process.env, THINLAYER_LOCK_WAIT_MS: '20000' },
  });
}

describe('thinlayer snapshotter (simulated kernel)', () => {
  it("serves every call with containerd's semantics and error codes", async () => {
    const b = box();
    onTestFinished(() => b.cleanup());
    const run = await startChild(b);
    onTestFinished(() => run.stop());
    const c: Client = run.client;
    expect(statSync(b.socket).mode & 0o777).toBe(0o600);

    const t1 = BigInt(Date.now()) * 1_000_000n;
    const prepared = await c.Prepare({ key: 'a', parent: '', labels: { one: '1' } });
    const t2 = BigInt(Date.now() + 1) * 1_000_000n;
    expect(prepared.mounts).toHaveLength(1);
    const [m] = prepared.mounts;
    expect(m.type).toBe('ext4');
    expect(m.source.startsWith('/')).toBe(true);
    expect(existsSync(m.source)).toBe(true);
    expect(m.options).not.toContain('ro');
    expect((await c.Mounts({ key: 'a' })).mounts).toEqual(prepared.mounts);

    const st = (await c.Stat({ key: 'a' })).info;
    expect(st).toMatchObject({ name: 'a', parent: '', kind: 'ACTIVE', labels: { one: '1' } });
    const created = tsNs(st.created_at);
    expect(created >= t1 && created <= t2, `created ${created} between ${t1} and ${t2}`).toBe(true);
    expect(tsNs(st.updated_at)).toBe(created);

    await c.Commit({ name: 'c1', key: 'a', labels: { layer: 'one' } });
    expect(await code(c.Stat({ key: 'a' }))).toBe(Code.NOT_FOUND);
    expect((await c.Stat({ key: 'c1' })).info).toMatchObject({ name: 'c1', kind: 'COMMITTED', labels: { layer: 'one' } });
    expect(await code(c.Mounts({ key: 'c1' }))).toBe(Code.FAILED_PRECONDITION);

    const view = await c.View({ key: 'v', parent: 'c1' });
    expect(view.mounts[0].options).toContain('ro');
    expect((await c.Stat({ key: 'v' })).info).toMatchObject({ kind: 'VIEW', parent: 'c1' });
    await c.Prepare({ key: 'b', parent: 'c1' });
    expect(view.mounts[0].source).not.toBe((await c.Mounts({ key: 'b' })).mounts[0].source);

    // The error codes containerd's errdefs turns back into its errors.
    expect(await code(c.Prepare({ key: 'b', parent: '' }))).toBe(Code.ALREADY_EXISTS);
    expect(await code(c.Prepare({ key: 'x', parent: 'missing' }))).toBe(Code.NOT_FOUND);
    expect(await code(c.Prepare({ key: 'x', parent: 'b' }))).toBe(Code.INVALID_ARGUMENT);
    expect(await code(c.Prepare({ key: '', parent: '' }))).toBe(Code.INVALID_ARGUMENT);
    expect(await code(c.Commit({ name: 'c1', key: 'b' }))).toBe(Code.ALREADY_EXISTS);
    expect(await code(c.Commit({ name: 'c9', key: 'v' }))).toBe(Code.FAILED_PRECONDITION);
    expect(await code(c.Commit({ name: 'c9', key: 'missing' }))).toBe(Code.NOT_FOUND);
    expect(await code(c.Remove({ key: 'missing' }))).toBe(Code.NOT_FOUND);
    const refused = await c.Remove({ key: 'c1' }).catch((e) => e);
    expect(refused.code).toBe(Code.FAILED_PRECONDITION);
    expect(refused.details).toContain('remove');

    // Update: labels only, the whole map or one label at a time.
    const u1 = BigInt(Date.now()) * 1_000_000n;
    const updated = (await c.Update({ info: { name: 'c1', labels: { layer: 'two', extra: 'x' } }, update_mask: { paths: ['labels.extra'] } })).info;
    expect(updated.labels).toEqual({ layer: 'one', extra: 'x' });
    expect(tsNs(updated.updated_at) >= u1).toBe(true);
    expect(tsNs(updated.created_at)).toBe(tsNs((await c.Stat({ key: 'c1' })).info.created_at));
    expect((await c.Update({ info: { name: 'c1', labels: { only: 'this' } }, update_mask: { paths: ['labels'] } })).info.labels).toEqual({ only: 'this' });
    expect((await c.Update({ info: { name: 'c1', labels: { all: 'new' } } })).info.labels).toEqual({ all: 'new' });
    expect(await code(c.Update({ info: { name: 'c1', parent: 'b' }, update_mask: { paths: ['parent'] } }))).toBe(Code.INVALID_ARGUMENT);
    expect(await code(c.Update({ info: { name: 'missing' } }))).toBe(Code.NOT_FOUND);
    expect((await c.Stat({ key: 'c1' })).info.labels).toEqual({ all: 'new' });

    // List with containerd's filters.
    const names = async (filters: string[]) => (await c.List({ filters })).map((i: any) => i.name).sort();
    expect(await names([])).toEqual(['b', 'c1', 'v']);
    expect(await names(['kind==active'])).toEqual(['b']);
    expect(await names(['parent==c1'])).toEqual(['b', 'v']);
    expect(await names(['parent==c1,kind==view'])).toEqual(['v']);
    expect(await names(['kind==view', 'name==c1'])).toEqual(['c1', 'v']);
    expect(await names(['labels.all==new'])).toEqual(['c1']);
    expect(await names(['labels.all'])).toEqual(['c1']);
    expect(await names(['name~=^[bv]$'])).toEqual(['b', 'v']);
    expect(await names(['kind!=committed'])).toEqual(['b', 'v']);
    expect(await code(c.List({ filters: ['kind==active,'] }))).toBe(Code.INVALID_ARGUMENT);

    // Usage: the mapped bytes of the device (a committed one is activated for the reading).
    const usage = await c.Usage({ key: 'b' });
    expect(Number(usage.size)).toBeGreaterThanOrEqual(0);
    expect(Number((await c.Usage({ key: 'c1' })).size)).toBeGreaterThanOrEqual(0);
    expect(await code(c.Usage({ key: 'missing' }))).toBe(Code.NOT_FOUND);

    // Remove children, then the parent; Cleanup leaves nothing behind.
    await c.Remove({ key: 'b' });
    await c.Remove({ key: 'v' });
    await c.Remove({ key: 'c1' });
    await c.Cleanup({});
    expect(await names([])).toEqual([]);
    expect(existsSync(m.source), 'the node made for a removed snapshot').toBe(false);
    await run.stop();
    expect(existsSync(b.socket)).toBe(false);
    expect(await poolThinIds(b.stateDir)).toEqual(await ownedThinIds(b.stateDir)); // the base alone
    expect(await ownedThinIds(b.stateDir)).toHaveLength(1);
  });

  it('refuses a socket path another snapshotter serves, or where a file that is not a socket is', async () => {
    const b = box();
    onTestFinished(() => b.cleanup());
    const run = await startHere(b);
    onTestFinished(() => run.stop());
    const other = box();
    onTestFinished(() => other.cleanup());
    const second = spawnSync(
      process.execPath,
      [BIN, 'snapshotter', '-f', other.manifest, '--socket', b.socket, '--state-dir', other.stateDir, '--backend', 'sim'],
      { encoding: 'utf8' },
    );
    expect(second.status).toBe(2);
    expect(second.stderr).toContain('another process serves this socket');
    expect((await run.client.List({})).length).toBe(0); // the first one still serves
    const file = `${other.root}/not-a-socket`;
    writeFileSync(file, 'keep me');
    const third = spawnSync(process.execPath, [BIN, 'snapshotter', '-f', other.manifest, '--socket', file, '--state-dir', other.stateDir, '--backend', 'sim'], {
      encoding: 'utf8',
    });
    expect(third.status).toBe(2);
    expect(readFileSync(file, 'utf8')).toBe('keep me');
  });

  it("lists containerd's own NS/SEQ/NAME keys under that namespace's header as Stat finds them there, whichever way they were made", async () => {
    const b = box();
    onTestFinished(() => b.cleanup());
    const run = await startHere(b);
    onTestFinished(() => run.stop());
    const c = run.client;
    await c.Prepare({ key: 'k8s.io/1/by-ctr', parent: '' }); // ctr and the garbage collector: no header
    await c.Prepare({ key: 'k8s.io/2/by-cri', parent: '' }, ns('k8s.io')); // the CRI plugin, in process: a header
    await c.Prepare({ key: 'plain', parent: '' }, ns('k8s.io'));
    const listed = (await c.List({}, ns('k8s.io'))).map((i) => i.name).sort();
    expect(listed).toEqual(['k8s.io/1/by-ctr', 'k8s.io/2/by-cri', 'plain']);
    for (const key of listed) expect((await c.Stat({ key }, ns('k8s.io'))).info.name).toBe(key);
    // Without the header, only the empty namespace's keys: containerd's own, not the header's others.
    expect((await c.List({})).map((i) => i.name).sort()).toEqual(['k8s.io/1/by-ctr', 'k8s.io/2/by-cri']);
    expect((await c.List({}, ns('other'))).map((i) => i.name)).toEqual([]);
  });

  it('keeps each containerd namespace a key space of its own', async () => {
    const b = box();
    onTestFinished(() => b.cleanup());
    const run = await startHere(b);
    onTestFinished(() => run.stop());
    const c = run.client;
    await c.Prepare({ key: 'k', parent: '' }, ns('one'));
    await c.Prepare({ key: 'k', parent: '' }, ns('two'));
    await c.Prepare({ key: 'k', parent: '' }); // no header: a namespace of its own too
    await c.Commit({ name: 'done', key: 'k' }, ns('one'));
    expect((await c.Stat({ key: 'k' }, ns('two'))).info.kind).toBe('ACTIVE');
    expect(await code(c.Stat({ key: 'done' }, ns('two')))).toBe(Code.NOT_FOUND);
    expect(await code(c.Prepare({ key: 'x', parent: 'done' }, ns('two')))).toBe(Code.NOT_FOUND);
    expect((await c.List({}, ns('one'))).map((i) => i.name)).toEqual(['done']);
    expect((await c.List({}, ns('two'))).map((i) => i.name)).toEqual(['k']);
    const sources = new Set([(await c.Mounts({ key: 'k' }, ns('two'))).mounts[0].source, (await c.Mounts({ key: 'k' })).mounts[0].source]);
    expect(sources.size).toBe(2);
    // Keys are opaque: a long one with any characters never reaches a device-mapper name.
    const odd = `default/12/sha256:${'f'.repeat(300)}/../ "odd" \u00e9`;
    await c.Prepare({ key: odd, parent: '' }, ns('one'));
    expect((await c.Stat({ key: odd }, ns('one'))).info.name).toBe(odd);
    const status = await api.status({ stateDir: b.stateDir, backend: 'sim' });
    const made = status.snapshots!.find((s) => s.key === odd)!;
    expect(made.dmName).toBe(`thinlayer-ctr-snap-${made.thinId}`);
    expect(made.active).toBe(true);
  });

  it('serves parallel requests: every Prepare gets a device of its own', async () => {
    const b = box();
    onTestFinished(() => b.cleanup());
    const run = await startHere(b);
    onTestFinished(() => run.stop());
    const c = run.client;
    await c.Prepare({ key: 'l', parent: '' });
    await c.Commit({ name: 'layer', key: 'l' });
    const keys = Array.from({ length: 12 }, (_, i) => `root-${i}`);
    const mounts = await Promise.all(keys.map((key, i) => c.Prepare({ key, parent: i % 2 ? 'layer' : '' })));
    const stats = await Promise.all(keys.map((key) => c.Stat({ key })));
    expect(new Set(mounts.map((m) => m.mounts[0].source)).size).toBe(keys.length);
    expect(stats.map((s) => s.info.kind)).toEqual(keys.map(() => 'ACTIVE'));
    await Promise.all(keys.map((key) => c.Remove({ key })));
    expect((await c.List({})).map((i) => i.name)).toEqual(['layer']);
    await run.stop();
    expect(await poolThinIds(b.stateDir)).toEqual(await ownedThinIds(b.stateDir));
  });

  it('keeps committed and active snapshots over SIGTERM, SIGKILL and a reboot, activating active ones again', async () => {
    const b = box();
    onTestFinished(() => b.cleanup());
    let run = await startChild(b);
    const c = run.client;
    await c.Prepare({ key: 'a', parent: '' });
    await c.Commit({ name: 'c', key: 'a' });
    await c.Prepare({ key: 'live', parent: 'c' });
    await c.View({ key: 'look', parent: 'c' });
    await run.stop();
    const check = async (client: Client) => {
      expect((await client.List({})).map((i) => `${i.name}:${i.kind}`).sort()).toEqual(['c:COMMITTED', 'live:ACTIVE', 'look:VIEW']);
      expect((await client.Stat({ key: 'live' })).info.parent).toBe('c');
      const status = await api.status({ stateDir: b.stateDir, backend: 'sim' });
      const byKey = Object.fromEntries((status.snapshots ?? []).map((s) => [s.key, s]));
      expect(byKey.live.active).toBe(true);
      expect(byKey.look.active).toBe(true);
      expect(byKey.c.active).toBe(false);
    };

    run = await startChild(b);
    await check(run.client);
    run.proc.kill('SIGKILL');
    await run.exit;
    run.client.close();

    run = await startChild(b);
    await check(run.client);
    await run.stop();

    expect(cli(b, ['sim', 'reboot']).status).toBe(0);
    const before = await api.status({ stateDir: b.stateDir, backend: 'sim' });
    expect(before.snapshots!.every((s) => !s.active)).toBe(true);
    run = await startChild(b);
    onTestFinished(() => run.stop());
    await check(run.client);
    await run.client.Commit({ name: 'c2', key: 'live' });
    expect((await run.client.Stat({ key: 'c2' })).info.parent).toBe('c');
  });

  it('shares the state dir with apply: apply runs beside it and leaves the snapshots alone; status and doctor list them', async () => {
    const b = box(poolManifest({ layers: { os: {} }, devices: { dev1: { layer: 'os', state: 'activated' } } }));
    onTestFinished(() => b.cleanup());
    const run = await startChild(b);
    onTestFinished(() => run.stop());
    const c = run.client;
    await c.Prepare({ key: 'a', parent: '' });
    await c.Commit({ name: 'c', key: 'a' });
    await c.Prepare({ key: 'live', parent: 'c' });

    const applied = cli(b, ['apply', '-f', b.manifest, '--yes', '--json']);
    expect(applied.status, applied.stderr).toBe(0);
    const plan = JSON.parse(applied.stdout).plan;
    expect(plan.steps.filter((s: any) => s.target.startsWith('snapshot:'))).toEqual([]);
    const again = cli(b, ['plan', '-f', b.manifest, '--json']);
    expect(JSON.parse(again.stdout).steps).toEqual([]);

    // The snapshotter goes on serving, and sees what is still its own.
    await c.Prepare({ key: 'after', parent: 'c' });
    expect((await c.List({})).map((i) => i.name).sort()).toEqual(['after', 'c', 'live']);

    const status = JSON.parse(cli(b, ['status', '--json']).stdout);
    expect(status.snapshots.map((s: any) => s.key).sort()).toEqual(['after', 'c', 'live']);
    expect(status.unwanted).toEqual([]);
    const doctor = cli(b, ['doctor', '--json']);
    expect(doctor.status, doctor.stdout + doctor.stderr).toBe(0);
    expect(JSON.parse(doctor.stdout).orphans ?? []).toEqual([]);
  });

  it("a flipped byte in a record's key in snapshot.json: recovery replays the log and deletes no committed snapshot", async () => {
    const b = box();
    onTestFinished(() => b.cleanup());
    let run = await startHere(b);
    await run.client.Prepare({ key: 'a', parent: '' });
    await run.client.Commit({ name: 'c', key: 'a' });
    await run.client.Prepare({ key: 'live', parent: 'c' });
    await run.stop();
    const idsBefore = await ownedThinIds(b.stateDir);
    const logBefore = await readEvents(b.stateDir);

    // The snapshot's record of snapshot:N under `snapshots`, its key changed to one no thing has.
    const file = join(b.stateDir, 'snapshot.json');
    const text = readFileSync(file, 'utf8');
    const records = text.indexOf('"snapshots":{');
    expect(records).toBeGreaterThan(-1);
    const key = text.indexOf('"snapshot:', records) + '"snapshot:'.length;
    const damaged = Buffer.from(text);
    damaged[key] ^= 0x02; // '1' -> '3', ...
    writeFileSync(file, damaged);

    run = await startHere(b);
    onTestFinished(() => run.stop());
    expect((await run.client.List({})).map((i) => `${i.name}:${i.kind}`).sort()).toEqual(['c:COMMITTED', 'live:ACTIVE']);
    const since = (await readEvents(b.stateDir)).slice(logBefore.length);
    expect(since.filter((e) => e.type === 'step.intent' && /delete|remove/.test(e.op))).toEqual([]);
    expect(await ownedThinIds(b.stateDir)).toEqual(idsBefore);
    expect((await run.client.Stat({ key: 'live' })).info.parent).toBe('c');
  });

  it("a flipped bit in the log's last line (a Commit's record): the snapshotter refuses to start and deletes nothing", async () => {
    const b = box();
    onTestFinished(() => b.cleanup());
    const run = await startHere(b);
    await run.client.Prepare({ key: 'a', parent: '' });
    await run.client.Commit({ name: 'c', key: 'a' });
    await run.stop();
    const idsBefore = await ownedThinIds(b.stateDir);
    const logFile = join(b.stateDir, 'events.ndjson');
    const whole = readFileSync(logFile);
    const lines = whole.toString('utf8').split('\n');
    const commitLine = lines
      .map((l, i) => (l.includes('"type":"snapshot.set"') && l.includes('"kind":"committed"') ? i : -1))
      .reduce((a, i) => Math.max(a, i), -1);
    expect(commitLine).toBeGreaterThan(-1);
    // Make the commit's record the last, complete line, then damage one bit of it.
    const kept = Buffer.from(`${lines.slice(0, commitLine + 1).join('\n')}\n`);
    const at = kept.length - 40;
    kept[at] ^= 0x01;
    writeFileSync(logFile, kept);
    await expect(startHere(b)).rejects.toMatchObject({ code: 'E_LOG_CORRUPT', message: expect.stringContaining(`corrupt at line ${commitLine + 1}`) });
    expect(readFileSync(logFile).equals(kept)).toBe(true);
    // Put right, the committed snapshot and its device are all there.
    kept[at] ^= 0x01;
    writeFileSync(logFile, kept);
    expect(await ownedThinIds(b.stateDir)).toEqual(idsBefore);
  });
});

async function readEvents(stateDir: string) {
  const log = await EventLog.open(await openStateDir(stateDir));
  try {
    return (await log.readAll()).events;
  } finally {
    await log.close();
  }
}
