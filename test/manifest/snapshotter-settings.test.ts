// The manifest's `snapshotter` section: what `thinlayer snapshotter` reads besides the pool. Its
// writableSize is a size like any other, at least the base's, and refused (naming the path) otherwise.

import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/manifest/load.ts';
import { ManifestError } from '../../src/manifest/manifest-error.ts';

const POOL = 'pool: { name: p, baseSize: 1G }\n';

function problem(text: string): string {
  try {
    parseManifest(text, 'm.yaml');
  } catch (e) {
    if (e instanceof ManifestError) return e.message;
    throw e;
  }
  throw new Error('the manifest was accepted');
}

describe('the manifest’s snapshotter section', () => {
  it('reads writableSize in the size syntax, and is absent when the manifest has no such key', () => {
    expect(parseManifest(`${POOL}snapshotter: { writableSize: 2G }\n`, 'm.yaml').snapshotter).toEqual({ writableSizeBytes: 2 * 1024 ** 3 });
    expect(parseManifest(`${POOL}snapshotter: { writableSize: 1610612736 }\n`, 'm.yaml').snapshotter).toEqual({ writableSizeBytes: 1.5 * 1024 ** 3 });
    expect(parseManifest(`${POOL}snapshotter: {}\n`, 'm.yaml').snapshotter).toEqual({ writableSizeBytes: null });
    expect(parseManifest(POOL, 'm.yaml')).not.toHaveProperty('snapshotter');
  });

  it.each([
    ['not a size', 'snapshotter: { writableSize: big }', 'snapshotter.writableSize: expected a size such as'],
    ['below the base', 'snapshotter: { writableSize: 512M }', 'snapshotter.writableSize: expected at least the base size, 1 GiB'],
    ['not whole sectors', 'snapshotter: { writableSize: 1073741825 }', 'snapshotter.writableSize: expected a whole number of 512-byte sectors'],
    ['an unknown key', 'snapshotter: { size: 2G }', 'snapshotter.size: expected one of the keys writableSize'],
  ])('refuses %s', (_, line, fragment) => {
    expect(problem(`${POOL}${line}\n`)).toContain(fragment);
  });
});
