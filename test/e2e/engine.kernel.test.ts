// The engine end to end on the real kernel: converge, no-op, drift repaired by watch, and space
// returned to the host when devices and files are deleted.

import { describe, it, expect, beforeAll } from 'vitest';
import { writeFileSync, statSync, openSync, writeSync, fsyncSync, closeSync, unlinkSync, readFileSync } from 'node:fs';
import { spawn, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import * as api from '../../src/api/index.ts';
import { requireKernel, kernelBox } from './kernel-harness.ts';
import { webManifest, BIN } from './cli-harness.ts';
import { manifestYaml, withoutDevices, writeManifest } from '../builders/manifest.ts';

beforeAll(requireKernel);

function writeSynced(path: string, bytes: number): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(1 << 20, 0xab);
  for (let done = 0; done < bytes; done += chunk.length) writeSync(fd, chunk);
  fsyncSync(fd);
  closeSync(fd);
}

const allocated = (file: string) => statSync(file).blocks * 512;

async function waitFor(what: string, check: () => Promise<boolean>, tries = 120): Promise<void> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('the engine on the real kernel', () => {
  it('converges the example, then a second apply plans nothing', async () => {
    const b = kernelBox();
    const file = join(b.root, 'web.yaml');
    writeManifest(file, webManifest(b.mnt));
    const opts = { stateDir: b.stateDir, backend: 'kernel' as const, yes: true };
    const first = await api.apply(file, opts);
    expect(first.steps).toBeGreaterThan(10);
    const status = await api.status(opts);
    expect(status.devices.map((d) => [d.name, d.state])).toEqual([
      ['web1', 'mounted'],
      ['web2', 'activated'],
    ]);
    expect(status.pool?.mode).toBe('rw');
    const again = await api.apply(file, opts);
    expect(again.steps).toBe(0);
  });

  it('returns space to the host: deleted files and deleted devices shrink the sparse data file', async () => {
    const b = kernelBox();
    const file = join(b.root, 'web.yaml');
    // Nothing mounted at first, so no filesystem writes anything behind the measurement's back.
    const idle = manifestYaml(withoutDevices(webManifest(b.mnt), 'web1'));
    writeFileSync(file, idle);
    const opts = { stateDir: b.stateDir, backend: 'kernel' as const, yes: true };
    await api.apply(file, opts);
    execFileSync('sync');
    const data = join(b.stateDir, 'data.img');
    const before = allocated(data);

    // Online discard: a file deleted inside a mounted device gives its blocks back at once.
    writeManifest(file, webManifest(b.mnt));
    await api.apply(file, opts);
    const mounted = allocated(data);
    writeSynced(join(b.mnt, 'web1', 'big'), 64 << 20);
    expect(allocated(data) - mounted).toBeGreaterThan(60 << 20);
    unlinkSync(join(b.mnt, 'web1', 'big'));
    execFileSync('sync');
    await waitFor("the pool to return the deleted file's blocks", async () => allocated(data) < mounted + (4 << 20));

    // A deleted device is discarded before its thin id goes: the sparse file is back where it was.
    writeSynced(join(b.mnt, 'web1', 'big'), 64 << 20);
    writeFileSync(file, idle);
    await api.apply(file, opts);
    execFileSync('sync');
    expect(allocated(data)).toBeLessThanOrEqual(before * 1.05);
  });

  it('watch repairs a device removed with dmsetup and a mount removed with umount', async () => {
    const b = kernelBox();
    const file = join(b.root, 'web.yaml');
    writeManifest(file, webManifest(b.mnt));
    const opts = { stateDir: b.stateDir, backend: 'kernel' as const, yes: true };
    await api.apply(file, opts);
    writeFileSync(join(b.mnt, 'web1', 'kept'), 'kept');
    const watcher = spawn(process.execPath, [BIN, 'watch', '-f', file, '--interval', '1s', '--json', '--state-dir', b.stateDir, '--backend', 'kernel'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    watcher.stdout.on('data', (d) => (output += d));
    watcher.stderr.on('data', (d) => (output += d));
    try {
      const status = await api.status(opts);
      const web2 = status.devices.find((d) => d.name === 'web2')!;
      execFileSync('dmsetup', ['remove', web2.dmName!]);
      execFileSync('umount', [join(b.mnt, 'web1')]);
      await waitFor('watch to restore web1 and web2', async () => {
        const now = await api.status(opts);
        return now.devices.every((d) => d.state === d.desired);
      });
      expect(readFileSync(join(b.mnt, 'web1', 'kept'), 'utf8')).toBe('kept');
    } finally {
      watcher.kill('SIGTERM');
      const code = await new Promise<number | null>((r) => watcher.on('exit', (c) => r(c)));
      expect(code, output).toBe(0);
    }
  });
});

describe('the engine on the real kernel, block devices and sizes', () => {
  it('builds the pool on block devices the user names, and grows a device larger than its layer', async () => {
    const b = kernelBox();
    const { mkdirSync } = await import('node:fs');
    mkdirSync(b.src, { recursive: true });
    const loops: string[] = [];
    try {
      for (const [name, size] of [
        ['data.raw', '1G'],
        ['meta.raw', '64M'],
      ]) {
        execFileSync('truncate', ['-s', size, join(b.src, name)]);
        loops.push(execFileSync('losetup', ['-f', '--show', join(b.src, name)], { encoding: 'utf8' }).trim());
      }
      const file = join(b.root, 'blockdev.yaml');
      writeManifest(file, {
        pool: { name: 'blk', data: { device: loops[0] }, metadata: { device: loops[1] }, baseSize: '256M' },
        layers: { os: {} },
        devices: { big: { layer: 'os', size: '512M', mountpoint: `${b.mnt}/big` } },
      });
      const opts = { stateDir: b.stateDir, backend: 'kernel' as const, yes: true };
      await api.apply(file, opts);
      const status = await api.status(opts);
      expect(status.pool?.active).toBe(true);
      expect(status.pool?.data?.totalBytes).toBe(1 << 30);
      expect(status.devices[0].state).toBe('mounted');
      const df = execFileSync('df', ['-B1', '--output=size', join(b.mnt, 'big')], { encoding: 'utf8' })
        .trim()
        .split('\n')[1];
      expect(Number(df)).toBeGreaterThan(400 << 20); // grown past the 256M base
      await api.destroy(opts);
      expect(statSync(join(b.src, 'data.raw')).size).toBe(1 << 30); // the user's device is left in place
    } finally {
      for (const loop of loops) execFileSync('losetup', ['-d', loop]);
    }
  });
});
