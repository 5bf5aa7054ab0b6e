// `diff` and `commit` on the real kernel: a mounted container root changed in place, its changes
// listed against its layer (the untouched files of a thin snapshot share the layer's inodes and
// ctimes, so only what was written is read), then committed while mounted (the device suspended
// for the create_snap, so its ext4 is frozen and flushed), declared and applied: the new layer is
// not extracted, and a device of it holds the committed state, not what was written after. Exported
// as an OCI image layout, it reads back as an oci: source with the same chain ids.

import { describe, it, expect, beforeAll } from 'vitest';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as api from '../../src/api/index.ts';
import { diffDevice } from '../../src/app/diff.ts';
import { commitDevice } from '../../src/app/commit.ts';
import { exportImage } from '../../src/app/export.ts';
import { doctor } from '../../src/app/doctor.ts';
import { silentReporter } from '../../src/messages/message-port.ts';
import { requireKernel, kernelBox } from './kernel-harness.ts';
import { buildTar } from '../layers/tar-builder.ts';
import { simPool, writeManifest, type ManifestDraft } from '../builders/manifest.ts';

beforeAll(requireKernel);

describe('diff and commit on the real kernel', () => {
  it('lists what a mounted device changed, commits it as a layer without extracting it, and a device of that layer reads the committed state', async () => {
    const b = kernelBox();
    mkdirSync(b.src, { recursive: true });
    writeFileSync(
      join(b.src, 'os.tar'),
      buildTar([
        { name: 'etc/', type: 'dir' },
        { name: 'etc/conf', content: 'v1\n' },
        { name: 'bin/', type: 'dir' },
        { name: 'bin/old', content: 'old', mode: 0o755 },
        { name: 'bin/kept', content: 'kept'.repeat(10_000), mode: 0o755 },
      ]),
    );
    const base: ManifestDraft = {
      pool: simPool('kcommit'),
      layers: { os: { source: join(b.src, 'os.tar') } },
      devices: { web: { layer: 'os', mountpoint: `${b.mnt}/web` } },
    };
    const file = writeManifest(join(b.src, 'web.yaml'), base);
    const opts = { stateDir: b.stateDir, backend: 'kernel' as const };
    await api.apply(file, { ...opts, yes: true });

    const web = (...p: string[]) => join(b.mnt, 'web', ...p);
    writeFileSync(web('etc/conf'), 'v2\n');
    mkdirSync(web('srv'));
    writeFileSync(web('srv/new'), 'new\n');
    rmSync(web('bin/old'));

    const session = { stateDir: b.stateDir, backend: 'kernel' as const };
    const listed = await diffDevice({ session, reporter: silentReporter, device: 'web' });
    expect(listed.changes.filter((c) => !['/etc', '/bin'].includes(c.path))).toEqual([
      { kind: 'D', path: '/bin/old' },
      { kind: 'C', path: '/etc/conf' },
      { kind: 'A', path: '/srv' },
      { kind: 'A', path: '/srv/new' },
    ]);

    const c = await commitDevice({ session, reporter: silentReporter, device: 'web', layer: 'web-v2' });
    expect(c.created).toBe(true);
    expect(c.parent).toBe('os');
    expect(readFileSync(c.blob).length).toBe(c.bytes);
    writeFileSync(web('after'), 'written after the commit\n');

    const next = writeManifest(join(b.src, 'web-v2.yaml'), {
      ...base,
      layers: { ...base.layers, 'web-v2': { parent: 'os', source: c.blob } },
      devices: { ...base.devices, web2: { layer: 'web-v2', mountpoint: `${b.mnt}/web2` } },
    });
    const plan = await api.planFor(next, opts);
    expect(plan.steps.filter((s) => s.op === 'layer.commit' || s.op === 'snap.create').map((s) => `${s.op} ${s.target}`)).toEqual(['snap.create device:web2']);
    await api.apply(next, { ...opts, yes: true });
    const web2 = (...p: string[]) => join(b.mnt, 'web2', ...p);
    expect(readFileSync(web2('etc/conf'), 'utf8')).toBe('v2\n');
    expect(readFileSync(web2('srv/new'), 'utf8')).toBe('new\n');
    expect(readFileSync(web2('bin/kept'), 'utf8')).toBe('kept'.repeat(10_000));
    expect(existsSync(web2('bin/old'))).toBe(false);
    expect(existsSync(web2('after'))).toBe(false);
    expect(readFileSync(web('after'), 'utf8')).toBe('written after the commit\n');

    // Exported as an OCI image and read back as a source: the same chain ids, so nothing is extracted.
    const out = join(b.root, 'web-v2-image');
    const exported = await exportImage({ session, reporter: silentReporter, name: 'web-v2', dir: out, tag: 'web:v2' });
    expect(exported.layers.map((l) => l.diffId)).toEqual([expect.stringMatching(/^sha256:/), c.diffId]);
    const back = writeManifest(join(b.src, 'back.yaml'), {
      ...base,
      layers: { ...base.layers, 'web-v2': { source: `oci:${out}:v2` } },
      devices: { ...base.devices, web2: { layer: 'web-v2', mountpoint: `${b.mnt}/web2` } },
    });
    expect((await api.planFor(back, opts)).steps).toEqual([]);

    const report = await doctor({ ...opts, reporter: silentReporter });
    expect(report.findings.filter((f) => f.severity !== 'info').map((f) => `${f.code}: ${f.message}`)).toEqual([]);
  });
});
