// Watch on the simulated kernel: an edit to a manifest others could change is not applied, and a
// layer source owned by someone but root is reported.

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { box, deviceStates, manifestText, startWatch } from './sim-harness.ts';
import { waitFor } from './helpers.ts';

describe('watch and the files it obeys', () => {
  it('keeps the last valid manifest while the file is writable by others, and reports a source not owned by root', async () => {
    const b = box((mnt) => ({ d1: { layer: 'l1', mountpoint: `${mnt}/d1` } }));
    const w = startWatch(b);
    await waitFor('d1 mounted', async () => JSON.stringify(await deviceStates(b)) === JSON.stringify([['d1', 'mounted']]));

    const edit = manifestText({ d1: { layer: 'l1', mountpoint: `${b.mnt}/d1` }, d2: { layer: 'l1' } });
    b.write({ d1: { layer: 'l1', mountpoint: `${b.mnt}/d1` }, d2: { layer: 'l1' } });
    fs.chmodSync(b.file, 0o666);
    const refused = await waitFor('the untrusted edit reported', () => w.messages.find((m) => m.code === 'watch.manifest-invalid'));
    expect(refused.error).toContain('others can write to it');
    await w.moreRuns(1);
    expect(await deviceStates(b)).toEqual([['d1', 'mounted']]); // d2 not made

    const source = path.join(b.root, 'theirs');
    fs.mkdirSync(source);
    fs.writeFileSync(path.join(source, 'hello'), 'hi');
    fs.chownSync(source, 1000, 1000);
    fs.writeFileSync(b.file, edit.replace('  l1: {}', `  l1: {}\n  l2: { parent: l1, source: ${source} }`).replace('d2: { layer: l1 }', 'd2: { layer: l2 }'));
    fs.chmodSync(b.file, 0o644);
    const reported = await waitFor('the source reported', () => w.messages.find((m) => m.code === 'watch.untrusted-source'));
    expect(reported).toMatchObject({ layer: 'l2', source, why: expect.stringContaining('owned by uid 1000') });
    await waitFor('d2 made once the file is fixed', async () => (await deviceStates(b)).some(([name]) => name === 'd2'));
  });
});
