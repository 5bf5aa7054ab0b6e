import { describe, expect, it, onTestFinished } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { openStateDir } from '../../src/events/state-dir.ts';
import { requestReconcile, requests$, takeRequests, REQUESTS_DIR } from '../../src/watch/requests.ts';
import type { Trigger } from '../../src/watch/triggers.ts';
import { tempDir, waitFor } from './helpers.ts';

describe('reconcile requests', () => {
  it('are taken once each, including ones made before anyone listened and bare touched files', async () => {
    const stateDir = await openStateDir(path.join(tempDir(), 'state'));
    await requestReconcile(stateDir, 'apply');
    fs.writeFileSync(stateDir.path(`${REQUESTS_DIR}/now`), '');
    fs.writeFileSync(stateDir.path(`${REQUESTS_DIR}/.half-written.tmp`), '{"fr');
    const taken = await takeRequests(stateDir);
    expect(taken.map((r) => r.from).sort()).toEqual(['apply', 'unknown']);
    expect(await takeRequests(stateDir)).toEqual([]);
    expect(fs.readdirSync(stateDir.path(REQUESTS_DIR))).toEqual(['.half-written.tmp']);
  });

  it('trigger a watcher as they arrive', async () => {
    const stateDir = await openStateDir(path.join(tempDir(), 'state'));
    const seen: Trigger[] = [];
    const sub = requests$(stateDir, { scanMs: 50 }).subscribe((t) => seen.push(t));
    onTestFinished(() => sub.unsubscribe());
    await requestReconcile(stateDir, 'layers');
    await waitFor('the request', () => seen.length === 1);
    expect(seen[0]).toEqual({ kind: 'request', detail: 'layers' });
    await requestReconcile(stateDir, 'apply');
    await waitFor('the second request', () => seen.length === 2);
    expect(seen[1].detail).toBe('apply');
  });
});
