// The pure judgement of changes to what exists (src/plan/changes.ts): refused with the field named,
// or carried out (a pool growth only for files smaller than the manifest says).

import { describe, it, expect } from 'vitest';
import { poolGrowth, refuseChanges } from '../../src/plan/changes.ts';
import { initialState } from '../../src/lifecycle/projection.ts';
import type { EngineState } from '../../src/model/engine-state.ts';
import type { Manifest } from '../../src/model/manifest.ts';

const G = 1024 ** 3;

function manifest(over: Partial<Manifest['pool']> = {}): Manifest {
  return {
    file: '/m/thinlayer.yaml',
    version: 1,
    pool: {
      name: 'p',
      data: { kind: 'file', file: 'data.img', sizeBytes: 2 * G },
      metadata: { kind: 'file', file: 'metadata.img', sizeBytes: 1 << 26 },
      blockSizeBytes: 65536,
      baseSizeBytes: 1 << 28,
      filesystem: 'ext4',
      minFreeFraction: 0.1,
      noSpaceTimeoutSeconds: 60,
      ...over,
    },
    layers: [],
    devices: [],
  };
}

function made(m: Manifest): EngineState {
  return { ...initialState(), poolSpec: m.pool, pool: { name: 'p', dmName: 'thinlayer-p-pool', uuid: 'u', formatted: true, txid: 1, nextThinId: 1 } };
}

describe('changes to an existing pool', () => {
  it('accepts anything before the pool exists', () => {
    const state = { ...initialState(), poolSpec: manifest().pool };
    expect(() => refuseChanges(state, manifest({ name: 'q', blockSizeBytes: 131072 }))).not.toThrow();
  });

  it.each([
    ['pool.name', { name: 'q' }],
    ['pool.blockSize', { blockSizeBytes: 131072 }],
    ['pool.filesystem', { filesystem: 'xfs' as const }],
    ['pool.data', { data: { kind: 'device' as const, device: '/dev/sdz' } }],
    ['pool.metadata', { metadata: { kind: 'file' as const, file: 'other.img', sizeBytes: 1 << 26 } }],
    ['pool.data.size', { data: { kind: 'file' as const, file: 'data.img', sizeBytes: G } }],
  ])('refuses a changed %s with exit 2, naming the file and the field', (field, over) => {
    let error: any = null;
    try {
      refuseChanges(made(manifest()), manifest(over));
    } catch (e) {
      error = e;
    }
    expect(error?.exitCode).toBe(2);
    expect(error.message).toMatch(new RegExp(`^/m/thinlayer\\.yaml: ${field.replace(/\./g, '\\.')}: `));
    expect(error.detail).toMatchObject({ file: '/m/thinlayer.yaml', path: field });
  });

  it('grows only files smaller than the manifest says; a file grown further stays', () => {
    const state = made(manifest());
    const raised = manifest({ data: { kind: 'file', file: 'data.img', sizeBytes: 3 * G } });
    expect(poolGrowth(state, raised, { data: 2 * G, metadata: 1 << 26 })).toEqual({ dataBytes: 3 * G });
    expect(poolGrowth(state, raised, { data: 4 * G, metadata: 1 << 26 })).toBeNull();
    expect(poolGrowth(state, manifest(), { data: 2 * G, metadata: 1 << 26 })).toBeNull();
    expect(poolGrowth(initialState(), raised, { data: 2 * G, metadata: 1 << 26 })).toBeNull();
  });
});
