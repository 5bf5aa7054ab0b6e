// Temporary directories for layer tests: a root standing in for a mounted layer filesystem, a place
// for sources, and a sentinel directory beside the root that no apply may touch.

import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { onTestFinished } from 'vitest';
import { resolveLayerSource, type ResolvedLayer } from '../../src/layers/index.ts';
import type { ContentRules } from '../../src/layers/content-check.ts';

export interface Workspace {
  base: string;
  /** The layer filesystem. */
  root: string;
  /** Where sources are written. */
  sources: string;
  /** A directory beside the root holding one file: hostile layers aim here. */
  sentinel: string;
  /** Writes an archive into `sources` and resolves it as a layer (checked as it is hashed). */
  layer(name: string, bytes: Buffer, rules?: ContentRules): Promise<ResolvedLayer>;
  /** Writes an archive into `sources` and names it as a layer without reading it: what the extractor alone must judge. */
  uncheckedLayer(name: string, bytes: Buffer): ResolvedLayer;
  /** Every path under the sentinel directory (it starts with just `keep`). */
  sentinelContents(): string[];
}

export function workspace(): Workspace {
  const base = mkdtempSync(join(tmpdir(), 'thinlayer-layers-'));
  onTestFinished(() => rmSync(base, { recursive: true, force: true }));
  const root = join(base, 'root');
  const sources = join(base, 'sources');
  const sentinel = join(base, 'sentinel');
  for (const dir of [root, sources, sentinel]) mkdirSync(dir);
  writeFileSync(join(sentinel, 'keep'), 'sentinel');
  return {
    base,
    root,
    sources,
    sentinel,
    async layer(name, bytes, rules) {
      const path = join(sources, name);
      writeFileSync(path, bytes);
      const [layer] = await resolveLayerSource(name, sources, {}, undefined, rules);
      return layer;
    },
    uncheckedLayer(name, bytes) {
      const path = join(sources, name);
      writeFileSync(path, bytes);
      return { kind: 'tar', path, diffId: `sha256:${'0'.repeat(64)}`, sizeBytes: bytes.length, label: path };
    },
    sentinelContents: () => readdirSync(sentinel, { recursive: true }).map(String).sort(),
  };
}
