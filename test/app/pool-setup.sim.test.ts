// The snapshotter's pool setup makes apply's refusals (src/app/desired.ts refuseDesired): a
// lowered base size or another block size is refused before any step, naming the field.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import * as api from '../../src/api/index.ts';
import { Session } from '../../src/engine/session.ts';
import { ensurePoolAndBase } from '../../src/snapshotter/pool-setup.ts';
import { StepRunner } from '../../src/snapshotter/snapshot-steps.ts';
import { silentReporter } from '../../src/messages/message-port.ts';
import { loadedManifest, withPool, writeManifest, type ManifestDraft } from '../builders/manifest.ts';

const POOL: ManifestDraft = { pool: { name: 'ctr', data: { file: 'data.img', size: '64M' }, metadata: { file: 'metadata.img', size: '4M' }, baseSize: '24M' } };

describe("the snapshotter's pool setup", () => {
  it.each([
    ['a lowered base size', withPool(POOL, { baseSize: '16M' }), 'E_BASE_SIZE', 'pool.baseSize'],
    ['another block size', withPool(POOL, { blockSize: '128K' }), 'E_POOL_CHANGE', 'pool.blockSize'],
  ])('refuses %s as apply does', async (_what, draft, code, field) => {
    const root = mkdtempSync(join(tmpdir(), 'thinlayer-pool-setup-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const stateDir = join(root, 'state');
    const file = join(root, 'pool.yaml');
    writeManifest(file, POOL);
    expect((await api.apply(file, { stateDir, backend: 'sim', yes: true })).outcome).toBe('converged');
    const edited = loadedManifest(draft, file);
    const session = await Session.open({ stateDir, backend: 'sim', reporter: silentReporter, mutate: true, command: 'snapshotter' });
    try {
      const refused = ensurePoolAndBase(session, edited.pool, file, new StepRunner('thinlayer-ctr-pool', silentReporter));
      await expect(refused).rejects.toMatchObject({ exitCode: 2, code, message: expect.stringContaining(field) });
    } finally {
      await session.close();
    }
  });
});
