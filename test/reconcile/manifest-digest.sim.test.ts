// An unchanged manifest file is the manifest recorded with it: apply and plan do not parse it again.
// A changed file (even by a comment) is read again and its digest recorded.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { apply, planFor } from '../../src/api/index.ts';
import { EventLog } from '../../src/events/log.ts';
import { openStateDir } from '../../src/events/state-dir.ts';
import { loadManifest, manifestDigest } from '../../src/manifest/load.ts';
import { manifestYaml, simPool } from '../builders/manifest.ts';

function setup() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'thinlayer-digest-'));
  onTestFinished(() => fs.rmSync(root, { recursive: true, force: true }));
  const file = path.join(root, 'm.yaml');
  const text = manifestYaml({
    pool: simPool('dig', { data: { file: 'data.img', size: '1G' }, metadata: { file: 'meta.img', size: '64M' }, baseSize: '32M' }),
    layers: { os: {} },
    devices: { a: { layer: 'os', state: 'created' } },
  });
  fs.writeFileSync(file, text);
  return { stateDir: path.join(root, 'state'), file, text };
}

async function events(stateDir: string) {
  const log = await EventLog.open(await openStateDir(stateDir));
  try {
    return (await log.readAll()).events;
  } finally {
    await log.close();
  }
}

describe('the manifest digest', () => {
  it('records the digest, and records it again when only the text changed', async () => {
    const { stateDir, file, text } = setup();
    await apply(file, { stateDir, backend: 'sim', yes: true });
    const first = (await events(stateDir)).filter((e) => e.type === 'desired.set');
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ digest: manifestDigest(text, file) });

    const again = await apply(file, { stateDir, backend: 'sim', yes: true });
    expect(again.steps).toBe(0);
    expect((await events(stateDir)).filter((e) => e.type === 'desired.set')).toHaveLength(1);

    fs.writeFileSync(file, `# a comment\n${text}`);
    const commented = await apply(file, { stateDir, backend: 'sim', yes: true });
    expect(commented.steps).toBe(0);
    const sets = (await events(stateDir)).filter((e) => e.type === 'desired.set');
    expect(sets).toHaveLength(2);
    expect(sets[1]).toMatchObject({ digest: manifestDigest(`# a comment\n${text}`, file) });
  });

  it('takes the recorded manifest for a file with the recorded digest, without parsing the file', async () => {
    const { stateDir, file, text } = setup();
    await apply(file, { stateDir, backend: 'sim', yes: true });
    // Record, under this file's digest, a manifest that differs from what the file says (one more
    // device): only a reader that takes the recorded manifest plans that device.
    const parsed = await loadManifest(file);
    const recorded = { ...parsed, devices: [...parsed.devices, { ...parsed.devices[0], name: 'b' }] };
    const log = await EventLog.open(await openStateDir(stateDir));
    await log.append([{ type: 'desired.set', manifest: recorded, content: null, source: 'apply', digest: manifestDigest(text, file) }]);
    await log.close();
    const plan = await planFor(file, { stateDir, backend: 'sim' });
    expect(plan.steps.map((s) => `${s.op} ${s.target}`)).toEqual(['snap.create device:b']);
    // The file changed: read again, and the extra device is no longer wanted.
    fs.writeFileSync(file, `${text}# changed\n`);
    const replanned = await planFor(file, { stateDir, backend: 'sim' });
    expect(replanned.steps).toEqual([]);
  });
});
