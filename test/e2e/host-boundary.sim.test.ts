// The host boundary on the simulated kernel, through the CLI and the library: mountpoints refused
// at plan time (exit 2, before any step), mount options per device, an unmount that leaves another
// device's mount alone.

import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import * as api from '../../src/api/index.ts';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { ACTIONS } from '../../src/actions/action-table.ts';
import { openStateDir } from '../../src/events/state-dir.ts';
import { sandbox, webManifest } from './cli-harness.ts';
import { manifestYaml, withLayers } from '../builders/manifest.ts';

function box() {
  const b = sandbox();
  onTestFinished(() => b.cleanup());
  return b;
}

describe('mountpoints on the simulated kernel', () => {
  it('refuses a mountpoint through a symlink with exit 2 naming the component, before any step', () => {
    const b = box();
    mkdirSync(join(b.root, 'elsewhere'));
    symlinkSync(join(b.root, 'elsewhere'), join(b.mnt, 'link'));
    const file = b.writeManifest('web.yaml', webManifest(join(b.mnt, 'link')));
    const r = b.run(['apply', '-f', file, '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`devices.web1.mountpoint: refusing mountpoint ${join(b.mnt, 'link', 'web1')}: ${join(b.mnt, 'link')} is a symlink`);
    // No run started, nothing recorded but the state directory's identity and backend.
    expect(
      b
        .run(['events', '--json'])
        .stdout.trim()
        .split('\n')
        .map((l) => JSON.parse(l).type),
    ).toEqual(['state.identity', 'state.backend']);
    const plan = b.run(['plan', '-f', file]);
    expect(plan.code).toBe(2);
  });

  it('refuses a mountpoint inside the state directory', () => {
    const b = box();
    const file = b.writeManifest('web.yaml', webManifest(join(b.stateDir, 'mnt')));
    const r = b.run(['apply', '-f', file, '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('inside the state directory');
  });

  it('mounts nosuid,nodev unless the device lists suid and dev in mountOptions; other values exit 2', async () => {
    const b = box();
    const file = b.writeManifest('web.yaml', webManifest(b.mnt, { web3: { layer: 'apache', mountpoint: `${b.mnt}/web3`, mountOptions: ['dev', 'suid'] } }));
    expect(b.run(['apply', '-f', file, '--yes']).code).toBe(0);
    const kernel = new SimKernel({ dir: join(b.stateDir, 'sim') });
    onTestFinished(() => kernel.close());
    const options = async (where: string) => (await kernel.mounts()).find((m) => m.mountpoint === where)?.options;
    expect(await options(`${b.mnt}/web1`)).toEqual(expect.arrayContaining(['nosuid', 'nodev']));
    expect(await options(`${b.mnt}/web3`)).not.toContain('nosuid');
    expect(await options(`${b.mnt}/web3`)).not.toContain('nodev');
    // A layer mounted for inspection never honours either.
    const inspected = b.writeManifest('inspect.yaml', withLayers(webManifest(b.mnt), { apache: { parent: 'fedora', mountpoint: `${b.mnt}/apache` } }));
    expect(b.run(['apply', '-f', inspected, '--yes']).code).toBe(0);
    expect(await options(`${b.mnt}/apache`)).toEqual(expect.arrayContaining(['ro', 'nosuid', 'nodev']));
    // exec is no mount option: that device is written by hand, past the builder's types.
    const bad = b.writeManifest('bad.yaml', `${manifestYaml(webManifest(b.mnt))}  web4: { layer: apache, mountpoint: ${b.mnt}/web4, mountOptions: [exec] }\n`);
    const r = b.run(['apply', '-f', bad, '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('devices.web4.mountOptions');
  });

  it("an unmount step never takes down another device's mount, not even lazily", async () => {
    const b = box();
    const file = b.writeManifest('web.yaml', webManifest(b.mnt, { web3: { layer: 'apache', mountpoint: `${b.mnt}/web3` } }));
    const kernelOf = () => new SimKernel({ dir: join(b.stateDir, 'sim') });
    await api.apply(file, { stateDir: b.stateDir, backend: 'sim', yes: true });
    const kernel = kernelOf();
    onTestFinished(() => kernel.close());
    const status = await api.status({ stateDir: b.stateDir, backend: 'sim' });
    const web3 = status.devices.find((d) => d.name === 'web3')!;
    const stateDir = await openStateDir(b.stateDir);
    // An unmount of web3's device at web1's mountpoint: the mount there is web1's, left alone.
    const error = await ACTIONS['fs.unmount']!({ kernel, stateDir, poolDmName: '' }, { dmName: web3.dmName!, mountpoint: `${b.mnt}/web1` }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'E_KERNEL', operation: 'umount' });
    expect((await kernel.mounts()).map((m) => m.mountpoint).sort()).toEqual([`${b.mnt}/web1`, `${b.mnt}/web3`]);
  });
});
