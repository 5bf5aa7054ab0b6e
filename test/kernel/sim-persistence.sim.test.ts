// What the simulated kernel keeps and loses: across instances and processes (the CLI runs many
// times on one state dir), across a reboot, after SIGKILL, and with a torn journal line.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Journal } from '../../src/kernel/sim/journal.ts';
import { errnoOf, SimRig } from './sim-rig.ts';
import { filesAt } from '../../src/kernel/kernel-port.ts';

describe('simulated kernel: persistence', () => {
  it('an instance sees what another instance on the same directory did, both ways', async () => {
    const rig = new SimRig();
    const a = rig.kernel;
    const b = rig.instance();
    const pool = await rig.pool({ kernel: a });
    expect((await b.info(pool.name))?.minor).toBe(pool.info.minor);
    await b.message(pool.name, 'create_thin 1');
    expect(await errnoOf(a.message(pool.name, 'create_thin 1'))).toBe('EEXIST');
    await a.message(pool.name, 'set_transaction_id 0 9');
    expect((await b.status(pool.name))[0].params).toMatch(/^9 /);
    const thin = await rig.thin(pool, 1, { createId: false, kernel: b });
    expect(await errnoOf(a.remove(pool.name))).toBe('EBUSY');
    await a.remove(thin.name);
    expect(await b.info(thin.name)).toBeNull();
    expect(thin.minor).toBe((await a.create('again', '')).minor); // the lowest free minor is reused
  });

  it('a reboot drops devices, loops and mounts but keeps pool metadata and contents', async () => {
    const rig = new SimRig();
    const k = rig.kernel;
    const pool = await rig.pool();
    const thin = await rig.thin(pool, 1);
    await k.message(pool.name, 'set_transaction_id 0 4');
    await k.mkfs(thin.devPath, 'ext4');
    const m = rig.mountpoint('deep/m');
    await k.mount(thin.devPath, m, 'ext4');
    fs.writeFileSync(path.join(filesAt(k, m), 'note.txt'), 'kept\n');
    await k.sync(m);
    const mappedBefore = (await k.status(thin.name))[0].params;
    await rig.instance().reboot();
    expect(await k.listDevices()).toEqual([]);
    expect(await k.loopList()).toEqual([]);
    expect(await k.mounts()).toEqual([]);
    expect(fs.lstatSync(filesAt(k, m)).isDirectory()).toBe(true);
    expect(fs.readdirSync(filesAt(k, m))).toEqual([]);
    // Bring it back the way the engine would after boot.
    const fresh = rig.instance();
    const data = await fresh.loopAttach(pool.dataFile);
    const meta = await fresh.loopAttach(pool.metaFile);
    const pool2 = { ...pool, info: await fresh.create(pool.name, 'uuid-pool', rig.poolTable(data.minor, meta.minor, 64 * 1024 * 1024)) };
    expect((await fresh.status(pool.name))[0].params).toMatch(/^4 /);
    const thin2 = await rig.thin(pool2, 1, { createId: false, kernel: fresh });
    expect((await fresh.status(thin2.name))[0].params).toBe(mappedBefore);
    await fresh.mount(thin2.devPath, m, 'ext4');
    expect(fs.readFileSync(path.join(filesAt(k, m), 'note.txt'), 'utf8')).toBe('kept\n');
  });

  it('metadata from another simulator directory is not a pool here: EINVAL', async () => {
    const rig = new SimRig();
    const other = new SimRig();
    const pool = await other.pool();
    await other.kernel.remove(pool.name);
    const data = await rig.kernel.loopAttach(pool.dataFile);
    const meta = await rig.kernel.loopAttach(pool.metaFile);
    expect(await errnoOf(rig.kernel.create('p', '', rig.poolTable(data.minor, meta.minor, 64 * 1024 * 1024)))).toBe('EINVAL');
    fs.writeFileSync(pool.metaFile, 'not a pool at all');
    expect(await errnoOf(rig.kernel.create('p', '', rig.poolTable(data.minor, meta.minor, 64 * 1024 * 1024)))).toBe('EINVAL');
  });

  it('a mutation is durable when it returns: a process killed with SIGKILL mid-run loses nothing it reported', async () => {
    const rig = new SimRig();
    const pool = await rig.pool();
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sim-kill-writer.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', script, rig.simDir, pool.name], { stdio: ['ignore', 'pipe', 'inherit'] });
    const reported: number[] = [];
    await new Promise<void>((resolve, reject) => {
      let buffer = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        const lines = buffer.split('\n');
        buffer = lines.pop()!;
        reported.push(...lines.map(Number));
        if (reported.length >= 30) child.kill('SIGKILL');
      });
      child.on('exit', () => resolve());
      child.on('error', reject);
    });
    expect(reported.length).toBeGreaterThanOrEqual(30);
    const after = rig.instance();
    for (const id of reported) {
      expect(await errnoOf(after.message(pool.name, `create_thin ${id}`)), `thin ${id}`).toBe('EEXIST');
      expect(await after.info(`killed-${id}`)).not.toBeNull();
    }
    // The store is consistent and usable: the next id may or may not have landed, but one more works.
    const last = reported[reported.length - 1];
    expect(await errnoOf(after.message(pool.name, `create_thin ${last + 5}`))).toBe('no error');
  });

  it('a torn last journal line is ignored by readers and cut off by the next writer', async () => {
    const rig = new SimRig();
    const pool = await rig.pool();
    await rig.kernel.message(pool.name, 'create_thin 1');
    const journal = fs.readdirSync(path.join(rig.simDir, 'persistent')).find((n) => n.endsWith('.journal'))!;
    const file = path.join(rig.simDir, 'persistent', journal);
    fs.appendFileSync(file, '[{"t":"create_thin","pool":"x","id":'); // a write cut short
    const reader = rig.instance();
    expect(await errnoOf(reader.message(pool.name, 'create_thin 1'))).toBe('EEXIST');
    await reader.message(pool.name, 'create_thin 2');
    const lines = fs.readFileSync(file, 'utf8').split('\n');
    expect(lines[lines.length - 1]).toBe('');
    for (const line of lines.slice(0, -1)) expect(() => JSON.parse(line)).not.toThrow();
    expect(await errnoOf(rig.instance().message(pool.name, 'create_thin 2'))).toBe('EEXIST');
  });

  it('a lock left by a dead process is taken over', async () => {
    const rig = new SimRig();
    fs.writeFileSync(path.join(rig.simDir, 'lock'), '999999999');
    await rig.pool();
    expect(fs.existsSync(path.join(rig.simDir, 'lock'))).toBe(false);
  });

  it('the journal compacts into a snapshot as it grows, and readers follow across compactions', () => {
    const rig = new SimRig();
    const dir = path.join(rig.root, 'j');
    const codec = {
      empty: () => ({ n: 0 }),
      apply: (s: { n: number }, op: number) => {
        s.n += op;
      },
      toJSON: (s: { n: number }) => s,
      fromJSON: (j: unknown) => ({ ...(j as { n: number }) }),
    };
    const writer = new Journal(dir, 'count', codec, { fsync: false, compactMinBytes: 64 });
    const reader = new Journal(dir, 'count', codec, { fsync: false, compactMinBytes: 64 });
    for (let i = 1; i <= 100; i++) {
      writer.refresh();
      writer.append([1]);
      if (i % 7 === 0) {
        reader.refresh();
        expect(reader.state.n).toBe(i);
      }
    }
    expect(writer.snapshotGeneration).toBeGreaterThanOrEqual(5);
    expect(writer.journalBytes).toBeLessThanOrEqual(64 + 4);
    const journals = fs.readdirSync(dir).filter((n) => n.endsWith('.journal'));
    expect(journals.length).toBeLessThanOrEqual(1);
    reader.refresh();
    expect(reader.state.n).toBe(100);
  });
});
