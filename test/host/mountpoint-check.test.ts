import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { UserError } from '../../src/errors/index.ts';
import { checkMountpoints } from '../../src/host/mountpoint-check.ts';
import type { MountEntry } from '../../src/kernel/kernel-port.ts';
import type { Manifest } from '../../src/model/manifest.ts';
import { manifest } from '../engine/fixtures.ts';

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'thinlayer-mp-'));
  chmodSync(dir, 0o755);
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function wanting(mountpoint: string, layerMountpoint?: string): Manifest {
  const m = manifest({
    devices: [
      { name: 'web1', layer: 'apache', state: 'mounted', mountpoint, sizeBytes: null },
      { name: 'web2', layer: 'apache', state: 'activated', mountpoint: null, sizeBytes: null },
    ],
  });
  if (layerMountpoint) m.layers[1] = { ...m.layers[1]!, mountpoint: layerMountpoint };
  return m;
}

function check(desired: Manifest, opts: { stateDirRoot?: string; mounts?: MountEntry[]; owned?: string[]; mode?: 'converge' | 'down' } = {}): UserError | null {
  try {
    checkMountpoints({
      desired,
      mode: opts.mode ?? 'converge',
      stateDirRoot: opts.stateDirRoot ?? '/nonexistent/state',
      mounts: opts.mounts ?? [],
      owned: new Set(opts.owned ?? []),
    });
    return null;
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
}

const mountAt = (mountpoint: string, minor: number): MountEntry => ({ source: `/dev/dm-${minor}`, major: 253, minor, mountpoint, fstype: 'ext4', options: [] });

describe('mountpoints checked at plan time', () => {
  it('accepts a path of root-owned directories, missing ones included, and /tmp-like sticky ones', () => {
    const dir = scratch();
    mkdirSync(join(dir, 'srv'));
    expect(check(wanting(join(dir, 'srv', 'web1')))).toBeNull();
    expect(check(wanting(join(dir, 'missing', 'deeper', 'web1')))).toBeNull();
    mkdirSync(join(dir, 'shared'));
    chmodSync(join(dir, 'shared'), 0o1777);
    expect(check(wanting(join(dir, 'shared', 'web1')))).toBeNull();
  });

  it('refuses a symlink anywhere in the path, naming it, with exit 2 and the manifest field', () => {
    const dir = scratch();
    mkdirSync(join(dir, 'real'));
    symlinkSync(join(dir, 'real'), join(dir, 'link'));
    const error = check(wanting(join(dir, 'link', 'web1')))!;
    expect(error).toMatchObject({ code: 'E_MOUNTPOINT', exitCode: 2, detail: { file: '/m/web.yaml', path: 'devices.web1.mountpoint' } });
    expect(error.message).toContain(`${join(dir, 'link')} is a symlink`);
    mkdirSync(join(dir, 'real', 'web1'));
    symlinkSync(join(dir, 'real', 'web1'), join(dir, 'last'));
    expect(check(wanting(join(dir, 'last')))?.message).toContain(`${join(dir, 'last')} is a symlink`);
    // The layer's inspection mountpoint is checked too.
    expect(check(wanting(join(dir, 'real', 'web1'), join(dir, 'link', 'apache')))).toMatchObject({ detail: { path: 'layers.apache.mountpoint' } });
  });

  it('refuses a parent that someone but root owns or can write, naming it', () => {
    const dir = scratch();
    mkdirSync(join(dir, 'theirs'));
    chownSync(join(dir, 'theirs'), 1000, 1000);
    expect(check(wanting(join(dir, 'theirs', 'web1')))?.message).toContain(`${join(dir, 'theirs')}: it is owned by uid 1000`);
    mkdirSync(join(dir, 'group'));
    chmodSync(join(dir, 'group'), 0o775);
    expect(check(wanting(join(dir, 'group', 'web1')))?.message).toContain(`${join(dir, 'group')}: its group can write to it`);
    mkdirSync(join(dir, 'open'));
    chmodSync(join(dir, 'open'), 0o777);
    expect(check(wanting(join(dir, 'open', 'sub', 'web1')))?.message).toContain(`${join(dir, 'open')}: others can write to it`);
    writeFileSync(join(dir, 'file'), '');
    expect(check(wanting(join(dir, 'file', 'web1')))?.message).toContain(`${join(dir, 'file')} is not a directory`);
  });

  it('refuses a mountpoint inside the state directory or above it', () => {
    const dir = scratch();
    const state = join(dir, 'state');
    expect(check(wanting(join(state, 'mnt', 'web1')), { stateDirRoot: state })?.message).toContain('inside the state directory');
    expect(check(wanting(dir), { stateDirRoot: state })?.message).toContain('the state directory');
  });

  it('refuses a mountpoint where something else is mounted, and accepts one of its own devices there', () => {
    const dir = scratch();
    const target = join(dir, 'web1');
    mkdirSync(target);
    const error = check(wanting(target), { mounts: [mountAt(target, 7)], owned: ['253:3'] });
    expect(error?.message).toContain('/dev/dm-7 (253:7) is mounted there already');
    expect(check(wanting(target), { mounts: [mountAt(target, 3)], owned: ['253:3'] })).toBeNull();
    // What is on top counts: ours under someone else's is still covered.
    expect(check(wanting(target), { mounts: [mountAt(target, 3), mountAt(target, 7)], owned: ['253:3'] })).not.toBeNull();
  });

  it('checks nothing when nothing is to be mounted (down)', () => {
    const dir = scratch();
    symlinkSync('/etc', join(dir, 'link'));
    expect(check(wanting(join(dir, 'link', 'web1')), { mode: 'down' })).toBeNull();
  });
});
