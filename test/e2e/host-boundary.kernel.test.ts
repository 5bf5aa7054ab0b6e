// The host boundary on the real kernel: mounts are nosuid,nodev unless a device allows them, a
// mountpoint already in use by something else is refused before any step, and a mountpoint
// reached through a symlink is refused.

import { describe, it, expect, beforeAll, onTestFinished } from 'vitest';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as api from '../../src/api/index.ts';
import { UserError } from '../../src/errors/index.ts';
import { mount, umount2 } from '../../src/host/libc.ts';
import { requireKernel, kernelBox } from './kernel-harness.ts';
import { webManifest } from './cli-harness.ts';
import { writeManifest } from '../builders/manifest.ts';

beforeAll(requireKernel);

/** The mount's own options (field 6 of /proc/self/mountinfo) at a mountpoint. */
function mountOptionsAt(mountpoint: string): string[] | null {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const fields = line.split(' ');
    if (fields[4] === mountpoint) return fields[5]!.split(',');
  }
  return null;
}

describe('the host boundary on the real kernel', () => {
  it('mounts devices nosuid,nodev by default, and without them where mountOptions allow suid and dev', async () => {
    const b = kernelBox();
    const file = join(b.root, 'web.yaml');
    writeManifest(file, webManifest(b.mnt, { web3: { layer: 'apache', mountpoint: `${b.mnt}/web3`, mountOptions: ['suid', 'dev'] } }));
    await api.apply(file, { stateDir: b.stateDir, backend: 'kernel', yes: true });
    expect(mountOptionsAt(`${b.mnt}/web1`)).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    const open = mountOptionsAt(`${b.mnt}/web3`);
    expect(open).not.toBeNull();
    expect(open).not.toContain('nosuid');
    expect(open).not.toContain('nodev');
  });

  it('refuses, before any step, a mountpoint where something else is mounted', async () => {
    const b = kernelBox();
    const busy = join(b.mnt, 'web1');
    mkdirSync(busy, { recursive: true });
    const site = { operation: 'test mount', device: busy };
    mount('tmpfs', busy, 'tmpfs', 0, 'size=1m', site);
    onTestFinished(() => umount2(busy, 2, site));
    writeFileSync(join(busy, 'theirs'), 'not thinlayer');
    const file = join(b.root, 'web.yaml');
    writeManifest(file, webManifest(b.mnt));
    const error = await api.apply(file, { stateDir: b.stateDir, backend: 'kernel', yes: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UserError);
    expect(error).toMatchObject({ code: 'E_MOUNTPOINT', exitCode: 2, detail: { path: 'devices.web1.mountpoint' } });
    expect((error as Error).message).toContain('mounted there already');
    expect(readFileSync(join(busy, 'theirs'), 'utf8')).toBe('not thinlayer');
    expect(existsSync(join(b.stateDir, 'data.img'))).toBe(false); // not even the pool was made
  });

  it('refuses a mountpoint reached through a symlink', async () => {
    const b = kernelBox();
    mkdirSync(join(b.root, 'elsewhere'), { recursive: true });
    symlinkSync(join(b.root, 'elsewhere'), b.mnt);
    const file = join(b.root, 'web.yaml');
    writeManifest(file, webManifest(b.mnt));
    const error = await api.apply(file, { stateDir: b.stateDir, backend: 'kernel', yes: true }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'E_MOUNTPOINT', exitCode: 2 });
    expect((error as Error).message).toContain(`${b.mnt} is a symlink`);
  });
});
