// The simulated kernel writes nothing outside its state dir: a mount's files are under
// <state>/sim/mnt/<mountpoint>, status says where, and two checkouts applying the same manifest
// (the same mountpoints) do not meet.

import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { sandbox, webManifest } from './cli-harness.ts';
import { simMounted } from '../sim-mounts.ts';

function box() {
  const b = sandbox();
  onTestFinished(() => b.cleanup());
  return b;
}

describe("the simulated kernel's mounts", () => {
  it('live inside the state dir; nothing is made at the mountpoint, and status shows where', () => {
    const b = box();
    const base = join(b.root, 'run', 'thinlayer'); // does not exist, as /run/thinlayer on a fresh host
    const file = b.writeManifest('web.yaml', webManifest(base));
    expect(b.run(['apply', '-f', file, '--yes']).code).toBe(0);
    expect(existsSync(join(b.root, 'run'))).toBe(false);
    const seen = simMounted(b.stateDir, join(base, 'web1'));
    expect(existsSync(join(seen, 'lost+found'))).toBe(true);
    const status = b.json(['status']);
    expect(status.devices.find((d: any) => d.name === 'web1')).toMatchObject({ mountpoint: join(base, 'web1'), seenAt: seen });
    expect(b.run(['status']).stdout).toContain(`mounts are seen under ${join(b.stateDir, 'sim', 'mnt')}`);
    expect(b.run(['status', '-o', 'wide']).stdout).toMatch(new RegExp(`${join(base, 'web1')}\\s+${seen}`));
    expect(b.run(['destroy', '--yes']).code).toBe(0);
    expect(existsSync(join(b.root, 'run'))).toBe(false);
  });

  it('two state dirs apply the same manifest side by side, each with its own files', () => {
    const a = box();
    const b = box();
    const base = join(a.root, 'shared-run');
    const fa = a.writeManifest('web.yaml', webManifest(base));
    const fb = b.writeManifest('web.yaml', webManifest(base));
    expect(a.run(['apply', '-f', fa, '--yes']).code).toBe(0);
    const planned = b.run(['plan', '-f', fb]);
    expect(planned.code, planned.stderr).toBe(0);
    expect(b.run(['apply', '-f', fb, '--yes']).code).toBe(0);
    writeFileSync(simMounted(a.stateDir, join(base, 'web1'), 'mine'), 'a');
    expect(existsSync(simMounted(b.stateDir, join(base, 'web1'), 'mine'))).toBe(false);
    expect(readFileSync(simMounted(a.stateDir, join(base, 'web1'), 'mine'), 'utf8')).toBe('a');
  });
});
