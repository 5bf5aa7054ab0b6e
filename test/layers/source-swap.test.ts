// A layer source swapped for a fifo after it was hashed is refused when it is read again, never
// waited on: an open of a fifo blocks until a writer comes, and a run would hold the lock forever.

import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { resolveLayerSource } from '../../src/layers/resolve-source.ts';
import { applyLayer } from '../../src/layers/apply-layer.ts';
import { buildTar } from './tar-builder.ts';

function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'thinlayer-swap-'));
  onTestFinished(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

describe('a source swapped for a fifo after hashing', () => {
  it('an archive: extraction refuses it at once', async () => {
    const d = dir();
    const tar = join(d, 'layer.tar');
    writeFileSync(tar, buildTar([{ name: 'hello', content: 'hi' }]));
    const [layer] = await resolveLayerSource(tar, d);
    unlinkSync(tar);
    execFileSync('mkfifo', [tar]);
    mkdirSync(join(d, 'root'));
    await expect(applyLayer(layer, join(d, 'root'))).rejects.toThrow(/a fifo, not a regular file/);
  });

  it('a file of a directory source: extraction refuses it at once', async () => {
    const d = dir();
    const src = join(d, 'src');
    mkdirSync(src);
    writeFileSync(join(src, 'data'), 'some bytes');
    const [layer] = await resolveLayerSource(src, d);
    unlinkSync(join(src, 'data'));
    execFileSync('mkfifo', [join(src, 'data')]);
    mkdirSync(join(d, 'root'));
    await expect(applyLayer(layer, join(d, 'root'))).rejects.toThrow(/(not allowed|no longer a regular file|its content has diff id)/);
  });

  it('hashing itself refuses a fifo given as the source', async () => {
    const d = dir();
    execFileSync('mkfifo', [join(d, 'pipe')]);
    await expect(resolveLayerSource(join(d, 'pipe'), d)).rejects.toThrow(/neither a regular file nor a directory \(a fifo\)/);
  });
});
