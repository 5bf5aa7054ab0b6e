// The snapshotter's pool setup makes apply's refusals (src/app/desired.ts refuseDesired): a
// lowered base size or another block size is refused before any step, naming the field.

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import * as api from '../../src/api/index.ts';
import { Session } from '../../src/engine/session.ts';
import { ensurePoolAndBase } from '../../src/snapshotter/pool-setup.ts';
import { stepsOf } from '../../src/snapshotter/snapshot-steps.ts';
import { Run } from '../../src/engine/with-run.ts';
import { parseManifest } from '../../src/manifest/load.ts';
import { silentReporter } from '../../src/messages/message-port.ts';

const POOL = 'pool:\n  name: ctr\n  data: { file: data.img, size: 64M }\n  metadata: { file: metadata.img, size: 4M }\n  baseSize: 24M\n';

describe("the snapshotter's pool setup", () => {
  it.each([
    ['a lowered base size', POOL.replace('baseSize: 24M', 'baseSize: 16M'), 'E_BASE_SIZE', 'pool.baseSize'],
    ['another block size', POOL + '  blockSize: 128K\n', 'E_POOL_CHANGE', 'pool.blockSize'],
  ])('refuses %s as apply does', async (_what, text, code, field) => {
    const root = mkdtempSync(join(tmpdir(), 'thinlayer-pool-setup-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const stateDir = join(root, 'state');
    const file = join(root, 'pool.yaml');
    writeFileSync(file, POOL);
    expect((await api.apply(file, { stateDir, backend: 'sim', yes: true })).outcome).toBe('converged');
    const edited = parseManifest(text, file);
    const session = await Session.open({ stateDir, backend: 'sim', reporter: silentReporter, mutate: true, command: 'snapshotter' });
    try {
      const refused = ensurePoolAndBase(session, edited.pool, file, stepsOf(new Run('snapshotter'), 'thinlayer-ctr-pool', silentReporter));
      await expect(refused).rejects.toMatchObject({ exitCode: 2, code, message: expect.stringContaining(field) });
    } finally {
      await session.close();
    }
  });
});
