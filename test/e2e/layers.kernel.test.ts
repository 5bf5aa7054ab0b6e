// Layers with real content on the real kernel: the same scenario as the simulated tier.

import { describe, it, expect, beforeAll } from 'vitest';
import { writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import * as api from '../../src/api/index.ts';
import { writeLayerScenario, expectUpperChain, expectImage } from '../scenarios/layer-chain.ts';
import { requireKernel, kernelBox } from './kernel-harness.ts';

beforeAll(requireKernel);

describe('layers with content on the real kernel', () => {
  it('applies a three-layer chain and an OCI image into thin snapshots; writes stay in their device', async () => {
    const b = kernelBox();
    const file = writeLayerScenario(b.src, b.mnt);
    const opts = { stateDir: b.stateDir, backend: 'kernel' as const, yes: true };
    expect((await api.apply(file, opts)).outcome).toBe('converged');
    expectUpperChain(join(b.mnt, 'app1'));
    expectUpperChain(join(b.mnt, 'app2'));
    expectImage(join(b.mnt, 'img'));
    // The layer mounted for inspection shows its content and refuses writes.
    expectUpperChain(join(b.mnt, 'inspect-upper'));
    expect(() => writeFileSync(join(b.mnt, 'inspect-upper', 'nope'), 'x')).toThrow(/EROFS/);
    writeFileSync(join(b.mnt, 'app1', 'only-app1'), 'x');
    expect(existsSync(join(b.mnt, 'app2', 'only-app1'))).toBe(false);
    expect((await api.planFor(file, opts)).steps).toEqual([]);
    const status = await api.status(opts);
    expect(status.devices.map((d) => d.state)).toEqual(['mounted', 'mounted', 'mounted']);
    expect(status.layers.find((l) => l.name === 'upper')!.usedBy).toEqual(['app1', 'app2']);
  });
});
