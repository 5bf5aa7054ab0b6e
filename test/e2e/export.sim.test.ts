// `export` on the simulated kernel: a layer's chain, and a device's (its changes on top), written as
// an OCI image layout whose blobs match their digests and whose config names the recorded diff ids;
// read back as an `oci:DIR:TAG` source, the layout gives the same chain ids, so an apply finds those
// layers made and extracts only what is new. A source changed since it was applied is refused.

import { describe, it, expect, onTestFinished } from 'vitest';
import { createHash } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeLayerScenario } from '../scenarios/layer-chain.ts';
import { simMounted } from '../sim-mounts.ts';
import { sandbox } from './cli-harness.ts';
import { doctorProblems } from '../doctor-problems.ts';
import { simPool, writeManifest } from '../builders/manifest.ts';

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Exported {
  kind: string;
  tag: string;
  manifestDigest: string;
  layers: Array<{ digest: string; diffId: string; mediaType: string }>;
}

function readLayout(dir: string, tag: string) {
  const blob = (digest: string) => readFileSync(join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length)));
  const index = JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8'));
  const entry = index.manifests.find((m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name'] === tag);
  const manifest = JSON.parse(blob(entry.digest).toString());
  const config = JSON.parse(blob(manifest.config.digest).toString());
  return { blob, entry, manifest, config };
}

describe('export of a layer chain as an OCI image layout (simulated kernel)', () => {
  it('writes a layout whose blobs match their digests, and reads back as a source with the same chain ids', async () => {
    const box = sandbox();
    onTestFinished(() => box.cleanup());
    const src = join(box.root, 'src');
    const file = writeLayerScenario(src, box.mnt);
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);

    const out = join(box.root, 'upper-image');
    const e = box.json<Exported>(['export', 'upper', '--oci', out, '--tag', 'example.com/upper:v1']);
    expect(e.kind).toBe('layer');
    expect(e.tag).toBe('v1');
    expect(e.layers).toHaveLength(3);
    const { blob, entry, manifest, config } = readLayout(out, 'v1');
    expect(entry.annotations['io.containerd.image.name']).toBe('example.com/upper:v1');
    expect(sha(blob(entry.digest))).toBe(entry.digest);
    expect(config.rootfs.diff_ids).toEqual(e.layers.map((l) => l.diffId));
    for (const [i, l] of manifest.layers.entries()) {
      const bytes = blob(l.digest);
      expect(sha(bytes)).toBe(l.digest);
      expect(l.size).toBe(bytes.length);
      expect(sha(gunzipSync(bytes))).toBe(config.rootfs.diff_ids[i]);
    }
    // The same state exports the same bytes.
    const again = box.json<Exported>(['export', 'upper', '--oci', join(box.root, 'again'), '--tag', 'example.com/upper:v1']);
    expect(again.manifestDigest).toBe(e.manifestDigest);

    // Read back as a source: the chain ids are the ones made, so nothing is extracted.
    const back = writeManifest(join(src, 'back.yaml'), {
      pool: simPool('layered'),
      layers: {
        lower: { source: 'lower.tar' },
        middle: { parent: 'lower', source: 'middle.tar.gz' },
        upper: { source: `oci:${out}:v1` },
        image: { source: 'oci:image:v1' },
      },
      devices: { app1: { layer: 'upper', mountpoint: `${box.mnt}/app1` }, img: { layer: 'image', mountpoint: `${box.mnt}/img` } },
    });
    const steps = box.json<{ steps: Array<{ op: string; target: string }> }>(['plan', '-f', back]).steps;
    expect(steps.filter((s) => s.op === 'layer.commit' || s.op === 'snap.create')).toEqual([]);
  });

  it("exports a device as its layer's chain with its own changes on top; applied from the layout, a device of it reads those changes", async () => {
    const box = sandbox();
    onTestFinished(() => box.cleanup());
    const src = join(box.root, 'src');
    const file = writeLayerScenario(src, box.mnt);
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
    const img = (...p: string[]) => simMounted(box.stateDir, join(box.mnt, 'img'), ...p);
    writeFileSync(img('bin/app'), 'v3');
    mkdirSync(img('var'));
    writeFileSync(img('var/log'), 'started\n');

    const out = join(box.root, 'img-image');
    const e = box.json<Exported>(['export', 'img', '--oci', out, '--tag', 'img:v3', '--compress', 'none']);
    expect(e.kind).toBe('device');
    expect(e.layers).toHaveLength(3);
    expect(e.layers.every((l) => l.mediaType === 'application/vnd.oci.image.layer.v1.tar')).toBe(true);
    expect(e.layers.map((l) => l.digest)).toEqual(e.layers.map((l) => l.diffId));
    // Nothing of the reading is left: the plan of the manifest is empty.
    expect(box.json<{ steps: unknown[] }>(['plan', '-f', file]).steps).toEqual([]);

    const next = writeManifest(join(src, 'next.yaml'), {
      pool: simPool('layered'),
      layers: { image: { source: 'oci:image:v1' }, 'img-v3': { source: `oci:${out}:v3` } },
      devices: { img: { layer: 'image', mountpoint: `${box.mnt}/img` }, img3: { layer: 'img-v3', mountpoint: `${box.mnt}/img3` } },
    });
    const steps = box.json<{ steps: Array<{ op: string; target: string }> }>(['plan', '-f', next]).steps;
    // The image's two layers are made; only the device's changes are extracted.
    expect(steps.filter((s) => s.op === 'layer.commit')).toHaveLength(1);
    expect(box.run(['apply', '-f', next, '--yes']).code).toBe(0);
    const img3 = (...p: string[]) => simMounted(box.stateDir, join(box.mnt, 'img3'), ...p);
    expect(readFileSync(img3('bin/app'), 'utf8')).toBe('v3');
    expect(readFileSync(img3('var/log'), 'utf8')).toBe('started\n');
    expect(readFileSync(img3('etc/os-release'), 'utf8')).toBe('ID=thinlayer-test\n');
    expect(await doctorProblems(box.stateDir)).toEqual([]);
  });

  it('refuses a source changed since it was applied, and a directory that is not a layout, naming them', () => {
    const box = sandbox();
    onTestFinished(() => box.cleanup());
    const src = join(box.root, 'src');
    const file = writeLayerScenario(src, box.mnt);
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
    const busy = join(box.root, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'x'), 'x');
    const notLayout = box.run(['export', 'upper', '--oci', busy]);
    expect(notLayout.code).toBe(2);
    expect(notLayout.stderr).toContain('neither empty nor an OCI image layout');
    appendFileSync(join(src, 'lower.tar'), Buffer.alloc(512));
    const changed = box.run(['export', 'upper', '--oci', join(box.root, 'out')]);
    expect(changed.code, changed.stderr).toBe(2);
    expect(changed.stderr).toContain('changed since');
    const unknown = box.run(['export', 'nope', '--oci', join(box.root, 'out2')]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no layer or device named "nope"');
  });

  it('killed at every boundary of a device export: the next up puts back what it read, doctor is clean, and the same export then finishes', async () => {
    const box = sandbox();
    onTestFinished(() => box.cleanup());
    const file = writeLayerScenario(join(box.root, 'src'), box.mnt);
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
    writeFileSync(simMounted(box.stateDir, join(box.mnt, 'img'), 'bin/app'), 'v3');
    let k = 1;
    for (; k < 40; k++) {
      const r = box.run(['export', 'img', '--oci', join(box.root, `out-${k}`)], { THINLAYER_CRASH_POINT: String(k) });
      if (r.code === 0) break;
      expect(r.signal, `crash point ${k}: ${r.stderr}`).toBe('SIGKILL');
      expect(box.run(['up']).code, `up after crash point ${k}`).toBe(0);
      expect(await doctorProblems(box.stateDir), `crash point ${k}`).toEqual([]);
      expect(box.json<{ steps: unknown[] }>(['plan', '-f', file]).steps, `crash point ${k}`).toEqual([]);
    }
    expect(k).toBeGreaterThan(4);
    expect(k).toBeLessThan(40);
    expect(readLayout(join(box.root, `out-${k}`), 'latest').manifest.layers).toHaveLength(3);
  });
});
