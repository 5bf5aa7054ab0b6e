// `commit DEVICE LAYER` on the simulated kernel: a container's root becomes a layer without a copy.
// The layer is a snapshot of the device (its thin id is new, its content the device's at that
// instant), its diff tar is stored by digest, and a manifest that declares it (the printed lines)
// finds it made: apply extracts nothing for it, and a device of the new layer holds the committed
// files. Killed at every boundary, the same commit again finishes, nothing is lost and doctor is clean.

import { describe, it, expect, onTestFinished } from 'vitest';
import { readFileSync, writeFileSync, existsSync, statSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeLayerScenario } from '../scenarios/layer-chain.ts';
import { simMounted } from '../sim-mounts.ts';
import { sandbox, type Sandbox } from './cli-harness.ts';
import { doctorProblems } from '../doctor-problems.ts';
import { simPool, writeManifest } from '../builders/manifest.ts';

interface CommitJson {
  layer: string;
  parent: string | null;
  chainId: string;
  diffId: string;
  blob: string;
  thinId: number;
  created: boolean;
  changes: number;
  manifest: string;
}

/** The scenario's manifest with the committed layer declared and a device `img2` made from it. */
function withCommitted(box: Sandbox, blob: string, name = 'img-v2'): string {
  return writeManifest(join(box.root, 'src', 'committed.yaml'), {
    pool: simPool('layered'),
    layers: {
      lower: { source: 'lower.tar' },
      middle: { parent: 'lower', source: 'middle.tar.gz' },
      upper: { parent: 'middle', source: 'upper.tar.zst', mountpoint: `${box.mnt}/inspect-upper` },
      image: { source: 'oci:image:v1' },
      [name]: { parent: 'image', source: blob },
    },
    devices: {
      app1: { layer: 'upper', mountpoint: `${box.mnt}/app1` },
      app2: { layer: 'upper', mountpoint: `${box.mnt}/app2` },
      img: { layer: 'image', mountpoint: `${box.mnt}/img` },
      img2: { layer: name, mountpoint: `${box.mnt}/img2` },
    },
  });
}

function setUp(): { box: Sandbox; file: string; img: (...p: string[]) => string } {
  const box = sandbox();
  onTestFinished(() => box.cleanup());
  const file = writeLayerScenario(join(box.root, 'src'), box.mnt);
  expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
  const img = (...p: string[]) => simMounted(box.stateDir, join(box.mnt, 'img'), ...p);
  writeFileSync(img('bin/app'), 'v3');
  mkdirSync(img('var'));
  writeFileSync(img('var/log'), 'started\n');
  rmSync(img('srv/index.html'));
  return { box, file, img };
}

describe('commit of a device as a layer (simulated kernel)', () => {
  it('makes the device a layer in one snapshot, stores its diff by digest, and an apply that declares it extracts nothing', async () => {
    const { box, file, img } = setUp();
    const before = box.json<{ things: unknown }>(['status']);
    expect(before).toBeTruthy();

    const c = box.json<CommitJson>(['commit', 'img', 'img-v2']);
    expect(c.layer).toBe('img-v2');
    expect(c.parent).toBe('image');
    expect(c.created).toBe(true);
    expect(c.changes).toBeGreaterThanOrEqual(3);
    // The tar is in the state dir's private store, named by its digest.
    expect(c.blob).toBe(join(box.stateDir, 'blobs', 'sha256', c.diffId.slice('sha256:'.length)));
    expect(statSync(join(box.stateDir, 'blobs')).mode & 0o777).toBe(0o700);
    expect(statSync(c.blob).mode & 0o777).toBe(0o600);
    expect(c.manifest).toBe(`layers:\n  img-v2:\n    parent: image\n    source: ${c.blob}`);
    // Nothing of the commit is left mounted or active but what was before: the plan of the old manifest
    // only deletes the layer no manifest lists.
    const stale = box.json<{ steps: Array<{ op: string; target: string }> }>(['plan', '-f', file]).steps;
    expect(stale.map((s) => s.op)).toEqual(['thin.delete']);

    // The same state committed again under another name: that layer is there already.
    const again = box.json<CommitJson>(['commit', 'img', 'img-v2b']);
    expect(again.created).toBe(false);
    expect(again.chainId).toBe(c.chainId);
    expect(again.thinId).toBe(c.thinId);

    // Written after the commit: not in the layer.
    writeFileSync(img('bin/app'), 'v4');

    const next = withCommitted(box, c.blob);
    const plan = box.json<{ steps: Array<{ op: string; target: string }> }>(['plan', '-f', next]).steps;
    // The committed layer is made: no snapshot of it, no extraction; only the new device.
    expect(plan.some((s) => s.op === 'layer.commit')).toBe(false);
    expect(plan.filter((s) => s.op === 'snap.create').map((s) => s.target)).toEqual(['device:img2']);
    expect(box.run(['apply', '-f', next, '--yes']).code).toBe(0);
    const img2 = (...p: string[]) => simMounted(box.stateDir, join(box.mnt, 'img2'), ...p);
    expect(readFileSync(img2('bin/app'), 'utf8')).toBe('v3');
    expect(readFileSync(img2('var/log'), 'utf8')).toBe('started\n');
    expect(existsSync(img2('srv/index.html'))).toBe(false);
    expect(readFileSync(img2('etc/os-release'), 'utf8')).toBe('ID=thinlayer-test\n');
    expect(readFileSync(img('bin/app'), 'utf8')).toBe('v4');
    expect(await doctorProblems(box.stateDir)).toEqual([]);
    expect(box.json<{ steps: unknown[] }>(['plan', '-f', next]).steps).toEqual([]);
  });

  it('refuses what it cannot commit, naming the argument, before anything is written', () => {
    const { box, file } = setUp();
    const events = () => readFileSync(join(box.stateDir, 'events.ndjson'), 'utf8');
    const log = events();
    for (const [args, needle] of [
      [['commit', 'nope', 'x'], 'no device named "nope"'],
      [['commit', 'img', 'bad name'], 'is not a layer name'],
      [['commit', 'img', 'upper'], 'already declares a layer named "upper"'],
      [['commit', 'img'], "missing required argument 'layer'"],
    ] as const) {
      const r = box.run([...args]);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain(needle);
    }
    expect(events()).toBe(log);
    expect(box.json<{ steps: unknown[] }>(['plan', '-f', file]).steps).toEqual([]);
  });

  it('killed at every boundary: the same commit again finishes, leaves nothing behind, and every layer it made holds its files', {
    timeout: 900_000,
  }, async () => {
    const { box, img } = setUp();
    const made: Array<{ name: string; blob: string; k: number }> = [];
    let k = 1;
    let done: CommitJson | null = null;
    for (; k < 80; k++) {
      // A new state at each crash point, so that each commit makes a layer (none of that content is there).
      writeFileSync(img('k'), String(k));
      const name = `img-k${k}`;
      const r = box.run(['commit', 'img', name, '--json'], { THINLAYER_CRASH_POINT: String(k) });
      if (r.code === 0) {
        done = JSON.parse(r.stdout);
        break;
      }
      expect(r.signal, `crash point ${k}: ${r.stderr}`).toBe('SIGKILL');
      const again = box.run(['commit', 'img', name, '--json']);
      expect(again.code, `commit after crash point ${k}: ${again.stderr}`).toBe(0);
      const c = JSON.parse(again.stdout) as CommitJson;
      made.push({ name, blob: c.blob, k });
      expect(readFileSync(img('bin/app'), 'utf8')).toBe('v3');
      // Whatever the crash left (a snapshot not yet a layer, a layer mounted for reading) is gone:
      // doctor's only word is that the committed layers are not declared yet.
      const left = (await doctorProblems(box.stateDir)).filter((p) => !p.startsWith('layer.undeclared'));
      expect(left, `crash point ${k}`).toEqual([]);
    }
    expect(done, 'the commit ran to its end once the crash points were passed').not.toBeNull();
    expect(k).toBeGreaterThan(6);

    // Every layer the walk made is whole: a manifest declares them all, apply extracts none of them,
    // and a device of each reads the state it was committed in.
    const file = writeManifest(join(box.root, 'src', 'all.yaml'), {
      pool: simPool('layered'),
      layers: { image: { source: 'oci:image:v1' }, ...Object.fromEntries(made.map((m) => [m.name, { parent: 'image', source: m.blob }])) },
      devices: {
        img: { layer: 'image', mountpoint: `${box.mnt}/img` },
        ...Object.fromEntries(made.map((m) => [`d${m.k}`, { layer: m.name, mountpoint: `${box.mnt}/d${m.k}` }])),
      },
    });
    const plan = box.json<{ steps: Array<{ op: string }> }>(['plan', '-f', file]).steps;
    expect(plan.filter((s) => s.op === 'layer.commit')).toEqual([]);
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
    for (const m of made) expect(readFileSync(simMounted(box.stateDir, join(box.mnt, `d${m.k}`), 'k'), 'utf8'), `layer ${m.name}`).toBe(String(m.k));
    expect(await doctorProblems(box.stateDir)).toEqual([]);
  });
});
