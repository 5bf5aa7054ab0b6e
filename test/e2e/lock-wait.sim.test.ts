// The CLI tells a user whom it waits for when another run holds the state dir's lock.

import { spawnSync } from 'node:child_process';
import { describe, expect, it, onTestFinished } from 'vitest';
import { BIN, sandbox } from './cli-harness.ts';
import { eventsModule, READ_LINE_SNIPPET, spawnSnippet } from '../events/helpers.ts';

describe('waiting for the lock', () => {
  it('says "waiting for pid N (apply, started …)" on stderr while another run holds the lock', async () => {
    const box = sandbox();
    onTestFinished(() => box.cleanup());
    const holder = spawnSnippet(`
      ${READ_LINE_SNIPPET}
      const { openStateDir } = await import(${JSON.stringify(eventsModule('state-dir.ts'))});
      const { acquireLock } = await import(${JSON.stringify(eventsModule('lock.ts'))});
      const lock = await acquireLock(await openStateDir(${JSON.stringify(box.stateDir)}), { command: 'apply', waitMs: 0 });
      console.log('held ' + process.pid);
      await nextLine();
      await lock.release();
      process.exit(0);
    `);
    await holder.line('held');
    const r = spawnSync(process.execPath, [BIN, 'up', '--state-dir', box.stateDir, '--backend', 'sim'], {
      encoding: 'utf8',
      env: { ...process.env, THINLAYER_LOCK_WAIT_MS: '300' },
      timeout: 60_000,
    });
    expect(r.stderr).toMatch(new RegExp(`^waiting for pid ${holder.pid} \\(apply, started \\d{4}-\\d\\d-\\d\\dT[^)]*\\)$`, 'm'));
    expect(r.stderr).toContain(`locked by pid ${holder.pid}`);
    expect(r.status).not.toBe(0);
    holder.send('release');
  });
});
