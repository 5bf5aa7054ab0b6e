// The CLI end to end on the simulated kernel: what a user does, and what the "done when" asks.

import { describe, it, expect, onTestFinished } from 'vitest';
import { readFileSync, writeFileSync, existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { sandbox, webManifest, REPO } from './cli-harness.ts';
import { manifestYaml, withoutDevices, withPool, writeManifest } from '../builders/manifest.ts';
import { simMounted } from '../sim-mounts.ts';

function setup() {
  const box = sandbox();
  onTestFinished(() => box.cleanup());
  const file = box.writeManifest('web.yaml', webManifest(box.mnt));
  return { box, file };
}

describe('thinlayer CLI on the simulated kernel', () => {
  it('applies, shows every device in its desired state, plans nothing more, and survives a reboot', () => {
    const { box, file } = setup();
    const first = box.run(['apply', '-f', file, '--yes']);
    expect(first.stderr).not.toMatch(/internal error/);
    expect(first.code).toBe(0);

    const status = box.json(['status']);
    expect(status.devices.map((d: any) => [d.name, d.state, d.desired])).toEqual([
      ['web1', 'mounted', 'mounted'],
      ['web2', 'activated', 'activated'],
    ]);
    expect(status.devices[0].mountpoint).toBe(join(box.mnt, 'web1'));
    expect(status.layers.map((l: any) => l.name)).toEqual(['fedora', 'apache']);
    expect(status.pool.active).toBe(true);
    expect(box.json(['plan', '-f', file]).steps).toEqual([]);

    // A file written into the mounted device ...
    writeFileSync(simMounted(box.stateDir, join(box.mnt, 'web1'), 'hello.txt'), 'hello from web1\n');
    expect(box.run(['sim', 'reboot']).code).toBe(0);
    const afterReboot = box.json(['status']);
    expect(afterReboot.pool.active).toBe(false);
    expect(afterReboot.devices.map((d: any) => d.state)).toEqual(['created', 'created']);
    expect(existsSync(simMounted(box.stateDir, join(box.mnt, 'web1'), 'hello.txt'))).toBe(false);

    // ... is back after `up`, with every device in its desired state.
    expect(box.run(['up']).code).toBe(0);
    expect(readFileSync(simMounted(box.stateDir, join(box.mnt, 'web1'), 'hello.txt'), 'utf8')).toBe('hello from web1\n');
    expect(box.json(['status']).devices.map((d: any) => d.state)).toEqual(['mounted', 'activated']);
    expect(box.json(['plan']).steps).toEqual([]);
  });

  it('applying the same manifest twice makes no kernel mutation and logs no step the second time', () => {
    const { box, file } = setup();
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
    const before = box.run(['events', '--json']).stdout.trim().split('\n').length;
    const again = box.run(['apply', '-f', file]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/nothing to do/);
    const after = box.run(['events', '--json']).stdout.trim().split('\n').length;
    expect(after).toBe(before);
  });

  it('writes in one device are invisible in its siblings', () => {
    const { box, file } = setup();
    writeManifest(file, webManifest(box.mnt, { web3: { layer: 'apache', state: 'mounted', mountpoint: `${box.mnt}/web3` } }));
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
    writeFileSync(simMounted(box.stateDir, join(box.mnt, 'web1'), 'only-web1'), 'x');
    expect(existsSync(simMounted(box.stateDir, join(box.mnt, 'web3'), 'only-web1'))).toBe(false);
  });

  it('deletes a dropped device only after confirmation', () => {
    const { box, file } = setup();
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
    const smaller = box.writeManifest('smaller.yaml', withoutDevices(webManifest(box.mnt), 'web2'));
    const refused = box.run(['apply', '-f', smaller]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/delete device web2/);
    expect(refused.stderr).toMatch(/not confirmed/);
    expect(box.json(['status']).devices.map((d: any) => d.name)).toEqual(['web1', 'web2']);

    expect(box.run(['apply', '-f', smaller, '--yes']).code).toBe(0);
    const status = box.json(['status']);
    expect(status.devices.map((d: any) => d.name)).toEqual(['web1']);
    expect(status.unwanted).toEqual([]);
    const events = box
      .run(['events', '--json'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events.some((e: any) => e.type === 'step.done' && e.op === 'thin.delete' && e.target === 'device:web2')).toBe(true);
  });

  it('rejects a bad manifest with exit 2, naming the file and the field, before any side effect', () => {
    const { box } = setup();
    const bad = box.writeManifest('bad.yaml', manifestYaml(webManifest(box.mnt)).replace('state: activated', 'state: running'));
    const r = box.run(['apply', '-f', bad, '--yes']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml/);
    expect(r.stderr).toMatch(/devices\.web2\.state/);
    expect(existsSync(join(box.stateDir, 'data.img'))).toBe(false);
    const asJson = box.run(['apply', '-f', bad, '--json']);
    expect(asJson.code).toBe(2);
    // One JSON object on stdout for scripts, the message on stderr for people.
    const failure = JSON.parse(asJson.stdout);
    expect(failure.error.code).toBe('E_MANIFEST');
    expect(failure.outcome).toBe('failed');
    expect(asJson.stderr).toMatch(/devices\.web2\.state/);
  });

  it('down keeps data and up brings it back', () => {
    const { box, file } = setup();
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
    writeFileSync(simMounted(box.stateDir, join(box.mnt, 'web1'), 'kept'), 'kept');
    expect(box.run(['down']).code).toBe(0);
    const down = box.json(['status']);
    expect(down.pool.active).toBe(false);
    expect(down.devices.map((d: any) => d.state)).toEqual(['created', 'created']);
    expect(box.run(['up']).code).toBe(0);
    expect(readFileSync(simMounted(box.stateDir, join(box.mnt, 'web1'), 'kept'), 'utf8')).toBe('kept');
  });

  it('destroy removes every device, the pool and its files', () => {
    const { box, file } = setup();
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
    expect(box.run(['destroy']).code).toBe(2);
    expect(box.run(['destroy', '--yes']).code).toBe(0);
    expect(existsSync(join(box.stateDir, 'data.img'))).toBe(false);
    expect(existsSync(join(box.stateDir, 'metadata.img'))).toBe(false);
    const status = box.json(['status']);
    expect(status.pool).toBeNull();
    expect(status.devices).toEqual([]);
  });

  it('keeps the state dir private', () => {
    const { box, file } = setup();
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
    expect(statSync(box.stateDir).mode & 0o077).toBe(0);
    expect(readdirSync(box.stateDir)).toContain('events.ndjson');
  });

  it('teaches with --help and refuses unknown options with exit 2', () => {
    const { box } = setup();
    const help = box.run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/apply -f FILE/);
    const unknown = box.run(['status', '--frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/--frobnicate/);
    expect(REPO).toBeTruthy();
  });
});

describe('thinlayer pool grow on the simulated kernel', () => {
  it('grows the data file, the loop device and the live pool table, and refuses to shrink', () => {
    const box = sandbox();
    onTestFinished(() => box.cleanup());
    const file = box.writeManifest('web.yaml', webManifest(box.mnt));
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
    const before = box.json(['status']).pool.data.totalBytes;
    const grown = box.run(['pool', 'grow', '--data', '3G', '--json']);
    expect(grown.code).toBe(0);
    expect(JSON.parse(grown.stdout).reloaded).toBe(true);
    const after = box.json(['status']).pool.data.totalBytes;
    expect(before).toBe(2 * 1024 ** 3);
    expect(after).toBe(3 * 1024 ** 3);
    expect(statSync(join(box.stateDir, 'data.img')).size).toBe(3 * 1024 ** 3);
    const shrink = box.run(['pool', 'grow', '--data', '1G']);
    expect(shrink.code).toBe(2);
    expect(shrink.stderr).toMatch(/not shrink/);
    const events = box
      .run(['events', '--json'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events.filter((e: any) => e.op === 'pool.grow').map((e: any) => e.type)).toEqual(['step.intent', 'step.done']);
  });
});

describe('device sizes and the base size', () => {
  it('grows the filesystem of a device larger than its layer, and refuses to lower pool.baseSize', () => {
    const box = sandbox();
    onTestFinished(() => box.cleanup());
    const file = box.writeManifest('web.yaml', webManifest(box.mnt, { big: { layer: 'apache', size: '512M', mountpoint: `${box.mnt}/big` } }));
    const applied = box.run(['apply', '-f', file, '--yes']);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stderr).toMatch(/grow the filesystem of device big/);
    expect(box.json(['plan', '-f', file]).steps).toEqual([]);
    const events = box
      .run(['events', '--json'])
      .stdout.trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events.some((e: any) => e.type === 'step.done' && e.op === 'fs.grow' && e.target === 'device:big')).toBe(true);

    // Raising the base size: new devices get it, existing layers stay as they are.
    const raised = box.writeManifest(
      'raised.yaml',
      withPool(webManifest(box.mnt, { big: { layer: 'apache', size: '512M', mountpoint: `${box.mnt}/big` }, web4: { layer: 'apache', state: 'activated' } }), {
        baseSize: '384M',
      }),
    );
    const r = box.run(['apply', '-f', raised, '--yes']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/snapshot the base as layer/);

    const lowered = box.writeManifest('lowered.yaml', withPool(webManifest(box.mnt), { baseSize: '128M' }));
    const refused = box.run(['apply', '-f', lowered, '--yes']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/pool\.baseSize: cannot be lowered/);
  });
});
