// The node Mounts answers with is remembered between calls, but never handed out once it is no
// longer this device: a node removed, or replaced by another device's, is looked up (and made) anew.

import { describe, it, expect, onTestFinished } from 'vitest';
import { mkdtempSync, rmSync, statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DeviceNodes } from '../../src/snapshotter/device-node.ts';
import { openStateDir } from '../../src/events/state-dir.ts';
import { mknod, S_IFBLK } from '../../src/host/libc.ts';
import { splitDevT } from '../../src/kernel/dev-t.ts';
import type { DmInfo } from '../../src/kernel/kernel-port.ts';

const info: DmInfo = {
  name: 'thinlayer-p-snap-1',
  uuid: '',
  major: 253,
  minor: 7001,
  openCount: 0,
  suspended: false,
  liveTable: true,
  inactiveTable: false,
  readOnly: false,
  eventNr: 0,
  targetCount: 1,
  devPath: '/nonexistent/dm-7001',
};

describe('the device nodes Mounts answers with', () => {
  it('looks a remembered node up anew once it is removed or no longer this device', async () => {
    const root = mkdtempSync(join(tmpdir(), 'thinlayer-nodes-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const stateDir = await openStateDir(join(root, 'state'));
    const nodes = new DeviceNodes();
    const numbers = (p: string) => splitDevT(statSync(p).rdev);

    const first = await nodes.pathOf(info, stateDir);
    expect(numbers(first)).toEqual({ major: 253, minor: 7001 });

    unlinkSync(first);
    const again = await nodes.pathOf(info, stateDir);
    expect(statSync(again).isBlockDevice()).toBe(true);
    expect(numbers(again)).toEqual({ major: 253, minor: 7001 });

    unlinkSync(again);
    mknod(again, S_IFBLK | 0o600, 253, 7002);
    const third = await nodes.pathOf(info, stateDir);
    expect(numbers(third)).toEqual({ major: 253, minor: 7001 });
  });
});
