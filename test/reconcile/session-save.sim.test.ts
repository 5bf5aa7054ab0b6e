// A failed save of snapshot.json is said on the message port, never swallowed, and tried again by
// the next session's close; the log stays the truth meanwhile.

import { describe, it, expect, onTestFinished } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Session } from '../../src/engine/session.ts';
import { CollectingReporter } from '../../src/messages/message-port.ts';

describe('saving the projection', () => {
  it('reports a failed save of snapshot.json and saves it at the next close', async () => {
    const root = mkdtempSync(join(tmpdir(), 'thinlayer-save-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const stateDir = join(root, 'state');
    const reporter = new CollectingReporter();
    const open = () => Session.open({ stateDir, backend: 'sim', reporter, mutate: true, command: 'test' });
    // snapshot.json cannot be written: a directory stands where the file goes.
    mkdirSync(join(stateDir, 'snapshot.json'), { recursive: true });
    let s = await open();
    await s.append([{ type: 'recovery.note', kind: 'intent-resolved', detail: { n: 1 } }]);
    await s.close();
    const failed = reporter.messages.filter((m) => m.code === 'state.snapshot-save-failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({ file: join(stateDir, 'snapshot.json') });

    rmSync(join(stateDir, 'snapshot.json'), { recursive: true });
    s = await open(); // replays the log: nothing was lost
    const seq = s.state.lastSeq;
    expect(seq).toBeGreaterThan(1);
    await s.close();
    expect(JSON.parse(readFileSync(join(stateDir, 'snapshot.json'), 'utf8')).seq).toBe(seq);
    expect(reporter.messages.filter((m) => m.code === 'state.snapshot-save-failed')).toHaveLength(1);
  });
});
