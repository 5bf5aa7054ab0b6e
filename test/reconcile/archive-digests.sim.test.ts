// Layer archives hashed by one apply are not hashed again by the next, unless the file changed.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { apply, planFor } from '../../src/api/index.ts';
import { sealDocument } from '../../src/events/checksum.ts';
import { ARCHIVE_DIGESTS_FILE } from '../../src/layers/archive-digests.ts';
import { buildTar } from '../layers/tar-builder.ts';
import { simPool, writeManifest } from '../builders/manifest.ts';

function setup() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'thinlayer-archive-digests-'));
  onTestFinished(() => fs.rmSync(root, { recursive: true, force: true }));
  const tar = path.join(root, 'app.tar');
  fs.writeFileSync(tar, buildTar([{ name: 'etc/app.conf', content: 'one\n' }]));
  const file = path.join(root, 'm.yaml');
  writeManifest(file, {
    pool: simPool('arc', { data: { file: 'data.img', size: '1G' }, metadata: { file: 'meta.img', size: '64M' }, baseSize: '32M' }),
    layers: { app: { source: 'app.tar' } },
    devices: {},
  });
  return { stateDir: path.join(root, 'state'), file, tar };
}

const cacheOf = (stateDir: string) => JSON.parse(fs.readFileSync(path.join(stateDir, ARCHIVE_DIGESTS_FILE), 'utf8'));

describe('archive digests', () => {
  it('are kept in the state dir, privately, and trusted while the file is the same file', async () => {
    const { stateDir, file, tar } = setup();
    await apply(file, { stateDir, backend: 'sim', yes: true });
    expect(fs.statSync(path.join(stateDir, ARCHIVE_DIGESTS_FILE)).mode & 0o777).toBe(0o600);
    const cache = cacheOf(stateDir);
    expect(Object.keys(cache.entries)).toEqual([tar]);
    expect((await planFor(file, { stateDir, backend: 'sim' })).steps).toEqual([]);

    // A damaged cache (one byte of a digest changed, its checksum not) is ignored: the archive is
    // hashed again and nothing is planned.
    const text = fs.readFileSync(path.join(stateDir, ARCHIVE_DIGESTS_FILE), 'utf8');
    const digestAt = text.indexOf('"diffId":"sha256:') + '"diffId":"sha256:'.length;
    fs.writeFileSync(path.join(stateDir, ARCHIVE_DIGESTS_FILE), text.slice(0, digestAt) + (text[digestAt] === '0' ? '1' : '0') + text.slice(digestAt + 1));
    expect((await planFor(file, { stateDir, backend: 'sim' })).steps).toEqual([]);

    // A digest recorded (and sealed) for this very file is believed: the plan now sees another
    // layer. (Only a reader that takes the cache instead of hashing the file plans anything here.)
    delete cache.checksum;
    cache.entries[tar].layer.diffId = `sha256:${'0'.repeat(64)}`;
    fs.writeFileSync(path.join(stateDir, ARCHIVE_DIGESTS_FILE), sealDocument(JSON.stringify(cache)));
    expect((await planFor(file, { stateDir, backend: 'sim' })).steps.map((s) => s.op)).toContain('layer.commit');
  });

  it('are not trusted once the file was written, even with its size and mtime put back', async () => {
    const { stateDir, file, tar } = setup();
    await apply(file, { stateDir, backend: 'sim', yes: true });
    const before = fs.statSync(tar);
    const changed = buildTar([{ name: 'etc/app.conf', content: 'two\n' }]);
    expect(changed.length).toBe(before.size);
    fs.writeFileSync(tar, changed);
    fs.utimesSync(tar, before.atime, before.mtime);
    const plan = await planFor(file, { stateDir, backend: 'sim' });
    expect(plan.steps.map((s) => s.op)).toContain('layer.commit');
    const applied = await apply(file, { stateDir, backend: 'sim', yes: true });
    expect(applied.steps).toBeGreaterThan(0);
    expect(cacheOf(stateDir).entries[tar].layer.diffId).not.toBe(undefined);
    expect((await planFor(file, { stateDir, backend: 'sim' })).steps).toEqual([]);
  });
});
