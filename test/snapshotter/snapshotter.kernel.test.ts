// `thinlayer snapshotter` on the real kernel (inside the test VM): the devices containerd is given
// exist, take an ext4 mount, keep what was written through Commit, are read-only as views, and
// leave no thin id behind when removed.

import { describe, it, expect, onTestFinished } from 'vitest';
import { statSync, mkdirSync, writeFileSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { requireKernel } from '../e2e/kernel-harness.ts';
import { box, startHere } from './harness.ts';
import * as api from '../../src/api/index.ts';

function sh(cmd: string, args: string[]) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

describe('thinlayer snapshotter (real kernel)', () => {
  it('gives containerd devices that exist, mount, keep their data through Commit, are read-only as views, and go without a trace', async () => {
    requireKernel();
    const b = box();
    onTestFinished(async () => {
      await api.destroy({ stateDir: b.stateDir, backend: 'kernel', yes: true, force: true }).catch(() => undefined);
      b.cleanup();
    });
    const run = await startHere(b, 'kernel');
    onTestFinished(() => run.stop());
    const c = run.client;
    const mnt = join(b.root, 'mnt');
    mkdirSync(mnt);

    const [m] = (await c.Prepare({ key: 'default/1/a', parent: '' })).mounts;
    expect(m.type).toBe('ext4');
    expect(statSync(m.source).isBlockDevice()).toBe(true);
    sh('mount', ['-t', m.type, m.source, mnt]);
    expect(statSync(mnt).mode & 0o777).toBe(0o755);
    expect(readdirSync(mnt), 'a snapshot of the base has an empty root').toEqual([]);
    writeFileSync(join(mnt, 'hello'), 'from a thin snapshot\n');
    sh('umount', [mnt]);
    await c.Commit({ name: 'layer-1', key: 'default/1/a' });

    const [v] = (await c.View({ key: 'default/2/v', parent: 'layer-1' })).mounts;
    expect(v.options).toContain('ro');
    expect(statSync(v.source).isBlockDevice()).toBe(true);
    sh('mount', ['-t', v.type, '-o', v.options.join(','), v.source, mnt]);
    expect(readFileSync(join(mnt, 'hello'), 'utf8')).toBe('from a thin snapshot\n');
    expect(() => writeFileSync(join(mnt, 'nope'), 'x')).toThrow(/EROFS/);
    sh('umount', [mnt]);
    expect(Number((await c.Usage({ key: 'layer-1' })).size)).toBeGreaterThan(0);

    await c.Remove({ key: 'default/2/v' });
    await c.Remove({ key: 'layer-1' });
    await run.stop();
    const doctor = spawnSync(
      process.execPath,
      [join(import.meta.dirname, '../../bin/thinlayer.js'), 'doctor', '--json', '--state-dir', b.stateDir, '--backend', 'kernel'],
      { encoding: 'utf8' },
    );
    const report = JSON.parse(doctor.stdout);
    expect(report.orphans ?? [], doctor.stdout).toEqual([]);
    const status = await api.status({ stateDir: b.stateDir, backend: 'kernel' });
    expect(status.snapshots).toEqual([]);
  });
});
