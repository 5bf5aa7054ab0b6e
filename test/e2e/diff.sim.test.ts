// `diff DEVICE` on the simulated kernel: the changes a container made to its root, against the layer
// it was made from, read without changing either. A device whose layer is not mounted has the layer
// mounted read-only for the reading and put back after (a logged activate and mount, then unmount
// and deactivate); the tar it writes, applied onto the layer, gives the device's tree; and after it
// the plan is empty and doctor finds nothing.

import { describe, it, expect, onTestFinished } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, mkdirSync, cpSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as api from '../../src/api/index.ts';
import { diffDevice } from '../../src/app/diff.ts';
import { applyLayer } from '../../src/layers/apply-layer.ts';
import { diffTrees } from '../../src/layers/tree-diff.ts';
import { writeLayerScenario } from '../scenarios/layer-chain.ts';
import { simMounted } from '../sim-mounts.ts';
import { CollectingReporter, silentReporter } from '../../src/messages/message-port.ts';
import { sandbox } from './cli-harness.ts';
import { doctorProblems } from '../doctor-problems.ts';

function box() {
  const root = mkdtempSync(join(tmpdir(), 'thinlayer-diff-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  return { root, stateDir: join(root, 'state'), mnt: join(root, 'mnt'), src: join(root, 'src') };
}

describe('diff of a device against its layer (simulated kernel)', () => {
  it('lists what a container changed, writes it as a layer tar, and leaves both devices as they were', async () => {
    const b = box();
    const file = writeLayerScenario(b.src, b.mnt);
    const opts = { stateDir: b.stateDir, backend: 'sim' as const, yes: true };
    expect((await api.apply(file, opts)).outcome).toBe('converged');

    // app1 is on layer upper (mounted for inspection); img on layer image (not mounted).
    const app1 = (...p: string[]) => simMounted(b.stateDir, join(b.mnt, 'app1'), ...p);
    writeFileSync(app1('etc/passwd'), 'changed in app1\n');
    writeFileSync(app1('only-app1'), 'x');
    rmSync(app1('srv/secret'));
    const img = (...p: string[]) => simMounted(b.stateDir, join(b.mnt, 'img'), ...p);
    writeFileSync(img('bin/app'), 'v3');
    mkdirSync(img('var'));
    writeFileSync(img('var/log'), 'started\n');

    const reporter = new CollectingReporter();
    const session = { stateDir: b.stateDir, backend: 'sim' as const };
    const one = await diffDevice({ session, reporter, device: 'app1' });
    expect(one.layer).toBe('upper');
    expect(one.changes.filter((c) => c.path !== '/' && c.path !== '/etc' && c.path !== '/srv')).toEqual([
      { kind: 'C', path: '/etc/passwd' },
      { kind: 'A', path: '/only-app1' },
      { kind: 'D', path: '/srv/secret' },
    ]);
    // The layer was mounted already: read where it is, no step run.
    expect(reporter.messages.filter((m) => m.code === 'step.start')).toEqual([]);

    const tarPath = join(b.root, 'img-changes.tar');
    const two = await diffDevice({ session, reporter, device: 'img', output: tarPath });
    expect(two.layer).toBe('image');
    expect(two.changes.filter((c) => c.path !== '/bin')).toEqual([
      { kind: 'C', path: '/bin/app' },
      { kind: 'A', path: '/var' },
      { kind: 'A', path: '/var/log' },
    ]);
    expect(two.tar?.diffId).toMatch(/^sha256:[0-9a-f]{64}$/);
    // The layer was activated and mounted read-only for the reading, and put back.
    const ops = reporter.messages.filter((m) => m.code === 'step.done').map((m) => (m as unknown as { step: { op: string; target: string } }).step.op);
    expect(ops).toEqual(['thin.activate', 'fs.mount', 'fs.unmount', 'thin.deactivate']);

    // Both devices are as they were: the plan is empty, doctor is clean, the files are still there.
    expect((await api.planFor(file, opts)).steps).toEqual([]);
    expect(await doctorProblems(b.stateDir)).toEqual([]);
    expect(readFileSync(img('bin/app'), 'utf8')).toBe('v3');
    expect(existsSync(app1('srv/secret'))).toBe(false);

    // The tar, applied onto a copy of the device's files as they were made (a fresh device of the
    // image layer), gives img's tree: nothing differs after.
    const more = `${readFileSync(file, 'utf8')}  img2: { layer: image, mountpoint: ${b.mnt}/img2 }\n`;
    writeFileSync(file, more);
    expect((await api.apply(file, opts)).outcome).toBe('converged');
    const copy = join(b.root, 'img2-copy');
    cpSync(simMounted(b.stateDir, join(b.mnt, 'img2')), copy, { recursive: true, preserveTimestamps: true });
    await applyLayer({ kind: 'tar', path: tarPath, diffId: two.tar!.diffId, sizeBytes: two.tar!.bytes }, copy);
    // A tar keeps whole seconds: a path that differs only below the second is the same.
    const sameToTheSecond = (path: string) => {
      const [x, y] = [statSync(join(copy, path)), statSync(img(path))];
      const content = x.isFile() ? readFileSync(join(copy, path)).equals(readFileSync(img(path))) : true;
      return content && x.mode === y.mode && x.uid === y.uid && x.gid === y.gid && Math.floor(x.mtimeMs / 1000) === Math.floor(y.mtimeMs / 1000);
    };
    const left = (await diffTrees(copy, img())).filter((c) => !(c.kind === 'C' && sameToTheSecond(c.path)));
    expect(left.map((c) => `${c.kind} ${c.path}`)).toEqual([]);
  });

  it('refuses a device that is not recorded, naming it', async () => {
    const b = box();
    const file = writeLayerScenario(b.src, b.mnt);
    await api.apply(file, { stateDir: b.stateDir, backend: 'sim', yes: true });
    await expect(diffDevice({ session: { stateDir: b.stateDir, backend: 'sim' }, reporter: silentReporter, device: 'nope' })).rejects.toThrow(
      /no device named "nope"/,
    );
  });

  it('from the command line, and killed at every boundary of its reading: the next up puts the layer back, doctor is clean, nothing is lost', async () => {
    const box = sandbox();
    onTestFinished(() => box.cleanup());
    const file = writeLayerScenario(join(box.root, 'src'), box.mnt);
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
    const img = (...p: string[]) => simMounted(box.stateDir, join(box.mnt, 'img'), ...p);
    writeFileSync(img('bin/app'), 'v3');

    const listed = box.run(['diff', 'img']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain('C /bin/app\n');
    const json = box.json<{ layer: string; changes: Array<{ kind: string; path: string }> }>(['diff', 'img']);
    expect(json.layer).toBe('image');
    expect(json.changes).toContainEqual({ kind: 'C', path: '/bin/app' });
    expect(box.run(['diff', 'nope']).code).toBe(2);

    // Killed at each boundary of the reading (the layer activated and mounted, then put back).
    let k = 1;
    for (; k < 40; k++) {
      const r = box.run(['diff', 'img', '-o', join(box.root, 'out.tar')], { THINLAYER_CRASH_POINT: String(k) });
      if (r.code === 0) break;
      expect(r.signal, `crash point ${k}: ${r.stderr}`).toBe('SIGKILL');
      const up = box.run(['up']);
      expect(up.code, `up after crash point ${k}: ${up.stderr}`).toBe(0);
      expect(await doctorProblems(box.stateDir), `crash point ${k}`).toEqual([]);
      expect(readFileSync(img('bin/app'), 'utf8')).toBe('v3');
      expect(box.json<{ steps: unknown[] }>(['plan', '-f', file]).steps, `crash point ${k}`).toEqual([]);
    }
    expect(k).toBeGreaterThan(4);
    expect(k).toBeLessThan(40);
    expect(existsSync(join(box.root, 'out.tar'))).toBe(true);
  });
});
