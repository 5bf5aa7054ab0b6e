// Layers with real content on the simulated kernel: a three-layer chain and an OCI image, each
// device a snapshot that sees every layer and keeps its writes to itself.

import { describe, it, expect, onTestFinished } from 'vitest';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import * as api from '../../src/api/index.ts';
import { writeLayerScenario, expectUpperChain, expectImage } from '../scenarios/layer-chain.ts';
import { buildTar } from '../layers/tar-builder.ts';
import { CollectingReporter } from '../../src/messages/message-port.ts';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { simMounted } from '../sim-mounts.ts';
import { simPool, writeManifest } from '../builders/manifest.ts';

function box() {
  const root = mkdtempSync(join(tmpdir(), 'thinlayer-layers-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  return { root, stateDir: join(root, 'state'), mnt: join(root, 'mnt'), src: join(root, 'src') };
}

describe('layers with content on the simulated kernel', () => {
  it('applies a three-layer chain and an OCI image into snapshots; writes stay in their device', async () => {
    const b = box();
    const file = writeLayerScenario(b.src, b.mnt);
    const reporter = new CollectingReporter();
    const opts = { stateDir: b.stateDir, backend: 'sim' as const, yes: true, reporter };
    expect((await api.apply(file, opts)).outcome).toBe('converged');
    expectUpperChain(simMounted(b.stateDir, join(b.mnt, 'app1')));
    expectUpperChain(simMounted(b.stateDir, join(b.mnt, 'app2')));
    expectImage(simMounted(b.stateDir, join(b.mnt, 'img')));
    expect(reporter.messages.some((m) => m.code === 'progress')).toBe(true);
    // The layer mounted for inspection shows its content, read-only.
    expectUpperChain(simMounted(b.stateDir, join(b.mnt, 'inspect-upper')));
    const sim = new SimKernel({ dir: join(b.stateDir, 'sim') });
    const inspect = (await sim.mounts()).find((m) => m.mountpoint === join(b.mnt, 'inspect-upper'));
    expect(inspect?.options).toContain('ro');
    await sim.close();

    const status = await api.status(opts);
    const upper = status.layers.find((l) => l.name === 'upper')!;
    expect(upper.chainId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(upper.usedBy).toEqual(['app1', 'app2']);
    expect(status.layers.find((l) => l.name === 'image')!.state).toBe('created');
    expect(upper.state).toBe('mounted');
    expect(upper.mountpoint).toBe(join(b.mnt, 'inspect-upper'));

    // A write in app1 is seen neither by its sibling nor by a new snapshot of the layer.
    writeFileSync(simMounted(b.stateDir, join(b.mnt, 'app1'), 'etc/passwd'), 'changed in app1\n');
    writeFileSync(simMounted(b.stateDir, join(b.mnt, 'app1'), 'only-app1'), 'x');
    expect(existsSync(simMounted(b.stateDir, join(b.mnt, 'app2'), 'only-app1'))).toBe(false);
    const more = `${readFileSync(file, 'utf8')}  app3: { layer: upper, mountpoint: ${b.mnt}/app3 }\n`;
    writeFileSync(file, more);
    expect((await api.apply(file, opts)).outcome).toBe('converged');
    expectUpperChain(simMounted(b.stateDir, join(b.mnt, 'app3')));
    expect(existsSync(simMounted(b.stateDir, join(b.mnt, 'app3'), 'only-app1'))).toBe(false);

    // Applying again re-resolves the same digests: nothing to do.
    expect((await api.planFor(file, opts)).steps).toEqual([]);
  });

  it('shares layer devices by content: two manifest layers with the same source and parent are one device', async () => {
    const b = box();
    const file = writeLayerScenario(b.src, b.mnt);
    const twin = readFileSync(file, 'utf8').replace('  image: {', '  lower-again: { source: lower.tar }\n  image: {');
    writeFileSync(file, twin);
    const opts = { stateDir: b.stateDir, backend: 'sim' as const, yes: true };
    await api.apply(file, opts);
    const status = await api.status(opts);
    const [a, c] = ['lower', 'lower-again'].map((n) => status.layers.find((l) => l.name === n)!);
    expect(a.chainId).toBe(c.chainId);
    expect(a.thinId).toBe(c.thinId);
  });

  it('makes a new layer device when a source changes, never rewriting the old one in place', async () => {
    const b = box();
    const file = writeLayerScenario(b.src, b.mnt);
    const opts = { stateDir: b.stateDir, backend: 'sim' as const, yes: true };
    await api.apply(file, opts);
    const before = (await api.status(opts)).layers.find((l) => l.name === 'upper')!;
    writeFileSync(
      join(b.src, 'upper.tar.zst'),
      buildTar([
        { name: 'srv/', type: 'dir' },
        { name: 'srv/v2', content: 'v2' },
      ]),
    );
    const plan = await api.planFor(file, opts);
    expect(plan.steps.map((s) => s.op)).toContain('layer.commit');
    expect(plan.steps.filter((s) => s.op === 'thin.delete').map((s) => s.target)).toEqual([`layer:${before.chainId!.slice(7, 23)}`]);
    await api.apply(file, opts);
    const after = (await api.status(opts)).layers.find((l) => l.name === 'upper')!;
    expect(after.chainId).not.toBe(before.chainId);
    expect(after.thinId).not.toBe(before.thinId);
    // The devices made from the old layer keep their content.
    expectUpperChain(simMounted(b.stateDir, join(b.mnt, 'app1')));
  });

  it('refuses hostile, truncated and oversized layers at plan time with exit 2, before anything is made', async () => {
    const b = box();
    const file = writeLayerScenario(b.src, b.mnt);
    const good = buildTar([
      { name: 'srv/', type: 'dir' },
      { name: 'srv/a', content: 'x'.repeat(5000) },
    ]);
    const bad: Array<[string, Buffer, RegExp]> = [
      ['hostile', buildTar([{ name: '../escape', content: 'x' }]), /entry "\.\.\/escape".*"\.\."/],
      ['escaping link', buildTar([{ name: 'l', type: 'symlink', linkname: '../../etc' }]), /entry "l".*leads outside the layer root/],
      ['truncated', good.subarray(0, 512 + 1000), /truncated/],
      ['device node', buildTar([{ name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0 }]), /device node is not allowed/],
      // 300 MiB of zeros in one entry: the layer devices hold the base's 256 MiB.
      [
        'bomb',
        gzipSync(buildTar([{ name: 'zeros', content: Buffer.alloc(300 << 20) }]), { level: 1 }),
        /entry "zeros".*larger than the 268435456 bytes its device holds/,
      ],
    ];
    const opts = { stateDir: b.stateDir, backend: 'sim' as const, yes: true };
    for (const [what, archive, pattern] of bad) {
      writeFileSync(join(b.src, 'middle.tar.gz'), archive);
      for (const run of [() => api.planFor(file, opts), () => api.apply(file, opts)]) {
        const error = await run().then(
          () => null,
          (e) => e,
        );
        expect(error?.exitCode, what).toBe(2);
        expect(String(error?.message), what).toMatch(pattern);
        expect(String(error?.message), what).toContain(join(b.src, 'middle.tar.gz'));
      }
    }
    expect(existsSync(join(b.root, 'escape'))).toBe(false);
    // Nothing was made: no pool, no thin device, no step logged.
    const s = await api.Session.open({ stateDir: b.stateDir, backend: 'sim', reporter: { notify() {} }, mutate: false, command: 'check' });
    try {
      expect(s.state.pool).toBeNull();
      expect(Object.keys(s.state.things)).toEqual([]);
    } finally {
      await s.close();
    }
    const sim = new SimKernel({ dir: join(b.stateDir, 'sim') });
    try {
      expect(await sim.listDevices()).toEqual([]);
    } finally {
      await sim.close();
    }
  });

  it('deletes a layer that still fails during extraction in the same run, and reports it', async () => {
    const b = box();
    mkdirSync(b.src, { recursive: true });
    // Each archive passes the checks on its own; together, the upper one writes through the lower one's symlink.
    writeFileSync(
      join(b.src, 'lower.tar'),
      buildTar([
        { name: 'usr/', type: 'dir' },
        { name: 'etc', type: 'symlink', linkname: 'usr' },
      ]),
    );
    writeFileSync(join(b.src, 'upper.tar'), buildTar([{ name: 'etc/passwd', content: 'x' }]));
    const file = join(b.src, 'm.yaml');
    writeManifest(file, {
      pool: simPool('fl', { data: { file: 'data.img', size: '1G' } }),
      layers: { lower: { source: 'lower.tar' }, upper: { source: 'upper.tar', parent: 'lower' } },
      devices: { app: { layer: 'upper', mountpoint: `${b.mnt}/app` } },
    });
    const reporter = new CollectingReporter();
    const opts = { stateDir: b.stateDir, backend: 'sim' as const, yes: true, reporter };
    expect((await api.planFor(file, opts)).blockers).toEqual([]);
    const error = await api.apply(file, opts).then(
      () => null,
      (e) => e,
    );
    expect(error?.exitCode).toBe(2);
    expect(String(error?.message)).toMatch(/entry "etc\/passwd": its parent etc is a symlink/);
    // The deletion is a step of the same run, reported like any other.
    const done = reporter.messages.filter((m) => m.code === 'step.done').map((m: any) => `${m.step.op} ${m.step.reason}`);
    expect(done.some((d) => /^thin\.delete delete layer upper \([0-9a-f]+\), whose content failed to apply \(.*its parent etc is a symlink/.test(d))).toBe(
      true,
    );
    const status = await api.status(opts);
    expect(status.layers.find((l) => l.name === 'lower')).toMatchObject({ state: 'created', ready: true });
    expect(status.layers.find((l) => l.name === 'upper')).toMatchObject({ state: 'absent', thinId: null, error: null });
    const s = await api.Session.open({ stateDir: b.stateDir, backend: 'sim', reporter: { notify() {} }, mutate: false, command: 'check' });
    try {
      expect(
        Object.values(s.state.things)
          .filter((t) => t.kind === 'layer')
          .map((t) => t.label),
      ).toEqual(['lower']);
      expect(Object.keys(s.state.pending)).toEqual([]);
    } finally {
      await s.close();
    }
  });
});
