// The blob store's promises: a blob's name is the digest of its bytes, even with two writers of one
// store at once (two exports into one layout take no lock); a temporary file a killed writer left is
// removed by the next write, and a live writer's is left alone.

import { describe, it, expect, onTestFinished } from 'vitest';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storeBlob, writeWhole } from '../../src/layers/blob-store.ts';
import { spawnSnippet } from '../events/helpers.ts';

function scratch(): string {
  const dir = mkdtempSync(join(tmpdir(), 'thinlayer-blobs-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A pid no process has: one that ran and exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout as unknown as number;
}

describe('the blob store', () => {
  it('names every blob by the digest of its bytes while two processes store into it at once', async () => {
    const store = scratch();
    const writer = (tag: string) =>
      spawnSnippet(`
        import { storeBlob } from './src/layers/blob-store.ts';
        for (let i = 0; i < 300; i++) storeBlob(${JSON.stringify(store)}, [Buffer.from('${tag}-' + i)]);
        console.log('done');
      `);
    const [a, b] = [writer('a'), writer('b')];
    const [ea, eb] = await Promise.all([a.exited, b.exited]);
    expect([ea.code, eb.code], `${ea.stderr}${eb.stderr}`).toEqual([0, 0]);
    const names = readdirSync(join(store, 'sha256'));
    expect(names.filter((n) => !n.startsWith('.'))).toHaveLength(600);
    for (const n of names)
      expect(
        createHash('sha256')
          .update(readFileSync(join(store, 'sha256', n)))
          .digest('hex'),
        n,
      ).toBe(n);
  });

  it("removes a killed writer's temporary file at the next write, and leaves a live writer's", () => {
    const dir = scratch();
    mkdirSync(join(dir, 'sha256'));
    const dead = join(dir, `.out.tar.${deadPid()}.tmp`);
    const live = join(dir, `.out.tar.${process.ppid}.tmp`);
    writeFileSync(dead, 'half');
    writeFileSync(live, 'in progress');
    const written = writeWhole(join(dir, 'out.tar'), [Buffer.from('whole')]);
    expect(readFileSync(written.path, 'utf8')).toBe('whole');
    expect(existsSync(dead)).toBe(false);
    expect(existsSync(live)).toBe(true);
    const blob = storeBlob(dir, [Buffer.from('whole')]);
    expect(blob.digest).toBe(written.digest);
    expect(readFileSync(blob.path, 'utf8')).toBe('whole');
  });
});
