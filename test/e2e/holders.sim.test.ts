// The long-running holders of a state dir (a snapshotter, a watch), as CLI processes: a second
// snapshotter is refused, destroy and down refuse while either runs and name it, and --force asks it
// to stop, waits until it has exited, and only then takes the pool away, so nothing re-creates it.

import { describe, it, expect, onTestFinished } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { box as snapBox, startChild, poolManifest, BIN } from '../snapshotter/harness.ts';
import { manifestText } from '../watch/sim-harness.ts';
import { tempDir } from '../watch/helpers.ts';

function cli(stateDir: string, args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [BIN, ...args, '--state-dir', stateDir, '--backend', 'sim'], {
    encoding: 'utf8',
    env: { ...process.env, THINLAYER_LOCK_WAIT_MS: '20000', ...env },
    timeout: 120_000,
  });
}

/** As cli(), without blocking this process (a gRPC client in it must keep answering its server). */
function cliAsync(stateDir: string, args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [BIN, ...args, '--state-dir', stateDir, '--backend', 'sim'], {
      env: { ...process.env, THINLAYER_LOCK_WAIT_MS: '20000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout!.on('data', (d) => (stdout += d));
    p.stderr!.on('data', (d) => (stderr += d));
    // 'close', not 'exit': at 'exit' the child's output may still be in the pipes.
    p.on('close', (status) => done({ status, stdout, stderr }));
  });
}

async function until(what: string, check: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `thinlayer watch --json` as a child process, its messages parsed as they come. */
function startWatchChild(stateDir: string, file: string, intervalMs: number) {
  const proc = spawn(process.execPath, [BIN, 'watch', '-f', file, '--interval', `${intervalMs}ms`, '--json', '--state-dir', stateDir, '--backend', 'sim'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const messages: { code: string; [k: string]: any }[] = [];
  let pending = '';
  let stderr = '';
  proc.stdout!.on('data', (d) => {
    pending += d;
    for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
      messages.push(JSON.parse(pending.slice(0, nl)));
      pending = pending.slice(nl + 1);
    }
  });
  proc.stderr!.on('data', (d) => (stderr += d));
  let exited = false;
  const exit = new Promise<number | null>((done) =>
    proc.on('exit', (code) => {
      exited = true;
      done(code);
    }),
  );
  onTestFinished(async () => {
    if (!exited) proc.kill('SIGKILL');
    await exit;
  });
  return { proc, messages, exit, stderr: () => stderr, exited: () => exited };
}

describe('holders of a state dir', () => {
  it('refuses a second snapshotter on the same state dir, naming the first (pid, socket, since)', async () => {
    const b = snapBox();
    onTestFinished(() => b.cleanup());
    const first = await startChild(b);
    onTestFinished(() => first.stop());
    await first.client.Prepare({ key: 'a', parent: '' });

    const other = join(b.root, 'other.sock');
    const second = spawnSync(process.execPath, [BIN, 'snapshotter', '-f', b.manifest, '--socket', other, '--state-dir', b.stateDir, '--backend', 'sim'], {
      encoding: 'utf8',
      env: { ...process.env, THINLAYER_LOCK_WAIT_MS: '20000' },
      timeout: 120_000,
    });
    expect(second.status, second.stderr).toBe(1);
    expect(second.stderr).toContain(`another snapshotter serves state dir ${b.stateDir}`);
    expect(second.stderr).toContain(`snapshotter pid ${first.proc.pid}`);
    expect(second.stderr).toContain(`socket ${b.socket}`);
    expect(second.stderr).toMatch(/since \d{4}-\d\d-\d\dT/);
    expect(existsSync(other)).toBe(false);
    // The first one still serves, and its snapshot is its own.
    expect((await first.client.List({})).map((i) => i.name)).toEqual(['a']);
  });

  it('destroy and down refuse while a snapshotter runs; destroy --force stops it, waits, then destroys', async () => {
    const b = snapBox();
    onTestFinished(() => b.cleanup());
    const run = await startChild(b);
    onTestFinished(() => run.stop());
    await run.client.Prepare({ key: 'a', parent: '' });
    await run.client.Commit({ name: 'c', key: 'a' });
    await run.client.Prepare({ key: 'live', parent: 'c' });

    for (const args of [['destroy', '--yes'], ['down']]) {
      const refused = cli(b.stateDir, args);
      expect(refused.status, refused.stderr).toBe(1);
      expect(refused.stderr).toContain(`snapshotter pid ${run.proc.pid}`);
      expect(refused.stderr).toContain(`socket ${b.socket}`);
      expect(refused.stderr).toMatch(new RegExp(`stop it with \`(kill ${run.proc.pid}|systemctl stop \\S+)\``));
      expect(refused.stderr).toContain(`thinlayer ${args[0]} --force`);
    }
    // Nothing was touched: the snapshotter serves its snapshots as before.
    expect((await run.client.List({})).map((i) => i.name).sort()).toEqual(['c', 'live']);
    // status names what runs.
    expect(JSON.parse(cli(b.stateDir, ['status', '--json']).stdout).holders).toMatchObject([{ kind: 'snapshotter', pid: run.proc.pid, socket: b.socket }]);
    expect(cli(b.stateDir, ['status']).stdout).toContain(`Running: snapshotter pid ${run.proc.pid}`);
    expect(cli(b.stateDir, ['plan', '--json']).status).toBe(0);

    const forced = await cliAsync(b.stateDir, ['destroy', '--yes', '--force']);
    expect(forced.status, forced.stderr).toBe(0);
    expect(forced.stderr).toContain(`asking the snapshotter (pid ${run.proc.pid}) to stop`);
    expect(forced.stderr).toContain(`the snapshotter (pid ${run.proc.pid}) has stopped`);
    // It had exited (cleanly: its calls finished, its socket removed) before destroy went on.
    const exit = await run.exit;
    expect(exit.code).toBe(0);
    expect(exit.stderr).toContain('destroy');
    expect(existsSync(b.socket)).toBe(false);
    expect(existsSync(join(b.stateDir, 'holders', 'snapshotter.json'))).toBe(false);
    const status = JSON.parse(cli(b.stateDir, ['status', '--json']).stdout);
    expect(status.snapshots ?? []).toEqual([]);
    expect(existsSync(join(b.stateDir, 'data.img'))).toBe(false);
  });

  it('a holder record whose process is gone, or whose pid was reused, is stale: destroy goes ahead and a new snapshotter starts', async () => {
    const b = snapBox();
    onTestFinished(() => b.cleanup());
    const run = await startChild(b);
    await run.client.Prepare({ key: 'a', parent: '' });
    run.proc.kill('SIGKILL');
    await run.exit;
    // Killed: its record stays behind, naming a pid that is gone.
    expect(existsSync(join(b.stateDir, 'holders', 'snapshotter.json'))).toBe(true);
    const again = await startChild(b);
    expect((await again.client.List({})).map((i) => i.name)).toEqual(['a']);
    await again.stop();

    // A record naming a live pid (this test's) with another start time: a reused pid, not the holder.
    mkdirSync(join(b.stateDir, 'holders'), { recursive: true });
    writeFileSync(
      join(b.stateDir, 'holders', 'watch.json'),
      JSON.stringify({ pid: process.pid, command: 'thinlayer watch', since: '2026-01-01T00:00:00.000Z', startTime: '1', kind: 'watch' }),
    );
    const destroyed = cli(b.stateDir, ['destroy', '--yes']);
    expect(destroyed.status, destroyed.stderr).toBe(0);
  });

  it('down refuses while watch runs; destroy --force stops the watch, and nothing is made again', async () => {
    const root = tempDir('thinlayer-holders-');
    const stateDir = join(root, 'state');
    const mnt = join(root, 'mnt');
    mkdirSync(mnt);
    mkdirSync(join(root, 'conf'));
    const file = join(root, 'conf', 'm.yaml');
    writeFileSync(file, manifestText({ d1: { layer: 'l1', state: 'mounted', mountpoint: `${mnt}/d1` }, d2: { layer: 'l1', state: 'activated' } }));
    const w = startWatchChild(stateDir, file, 300);
    await until('the first run', () => w.messages.some((m) => m.code === 'watch.run-done') || w.exited());
    expect(w.exited(), w.stderr()).toBe(false);

    const second = cli(stateDir, ['watch', '-f', file, '--interval', '300ms', '--json']);
    expect(second.status, second.stderr).toBe(1);
    expect(second.stderr).toContain(`another watch serves state dir ${stateDir}: watch pid ${w.proc.pid}`);

    for (const args of [['down'], ['destroy', '--yes']]) {
      const refused = cli(stateDir, args);
      expect(refused.status, refused.stderr).toBe(1);
      expect(refused.stderr).toContain(`watch pid ${w.proc.pid}`);
      expect(refused.stderr).toContain(`following ${file}`);
    }
    const before = JSON.parse(cli(stateDir, ['status', '--json']).stdout);
    expect(before.holders).toMatchObject([{ kind: 'watch', pid: w.proc.pid, manifest: file }]);
    expect(before.devices.map((d: any) => [d.name, d.state])).toEqual([
      ['d1', 'mounted'],
      ['d2', 'activated'],
    ]);

    const forced = cli(stateDir, ['destroy', '--yes', '--force']);
    expect(forced.status, forced.stderr).toBe(0);
    expect(forced.stderr).toContain(`the watch (pid ${w.proc.pid}) has stopped`);
    expect(await w.exit).toBe(0);
    expect(w.messages.find((m) => m.code === 'holder.stop-requested')).toMatchObject({ kind: 'watch', by: 'destroy' });
    expect(w.messages.at(-1)?.code).toBe('watch.stopped');

    // Several intervals later, nothing was made again: destroy's run is the log's last.
    await new Promise((r) => setTimeout(r, 1200));
    const events = cli(stateDir, ['events', '--json'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const lastRun = events.filter((e) => e.type === 'run.started').at(-1);
    expect(lastRun.command).toBe('destroy');
    expect(events.at(-1)).toMatchObject({ type: 'run.finished', outcome: 'converged' });
    const after = JSON.parse(cli(stateDir, ['status', '--json']).stdout);
    expect(after.devices ?? []).toEqual([]);
    expect(after.holders ?? []).toEqual([]);
    expect(existsSync(join(stateDir, 'data.img'))).toBe(false);
  });

  it('down --force beside a snapshotter with an active snapshot: the snapshotter stops, the manifest devices go down, the pool stays, saying why', async () => {
    const b = snapBox(poolManifest({ layers: { os: {} }, devices: { dev1: { layer: 'os', state: 'activated' } } }));
    onTestFinished(() => b.cleanup());
    const applied = cli(b.stateDir, ['apply', '-f', b.manifest, '--yes']);
    expect(applied.status, applied.stderr).toBe(0);
    const run = await startChild(b);
    await run.client.Prepare({ key: 'live', parent: '' });

    const down = await cliAsync(b.stateDir, ['down', '--force', '--json']);
    expect(down.status, down.stderr).toBe(0);
    expect(down.stderr).toContain(`the snapshotter (pid ${run.proc.pid}) has stopped`);
    expect((await run.exit).code).toBe(0);
    expect(JSON.parse(down.stdout).outcome).toBe('converged');
    expect(down.stderr).toContain('the pool stays active: 1 containerd snapshot(s) are active on it');
    const status = JSON.parse(cli(b.stateDir, ['status', '--json']).stdout);
    expect(status.pool.active).toBe(true);
    expect(status.devices.map((d: any) => [d.name, d.state])).toEqual([['dev1', 'created']]);
    expect(status.snapshots.map((s: any) => [s.key, s.active])).toEqual([['live', true]]);
    // The snapshot still works: a snapshotter started again serves it.
    const again = await startChild(b);
    onTestFinished(() => again.stop());
    expect((await again.client.Mounts({ key: 'live' })).mounts).toHaveLength(1);
  });
});
