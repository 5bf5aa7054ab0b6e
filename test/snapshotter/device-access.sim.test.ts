// The device node Mounts returns, owned and moded as the snapshot's labels ask (a jailed microVM
// runtime opens it as an unprivileged user), refused for a view unless read-only, and checked
// before anything is made. On the simulated kernel the node is the one thinlayer makes in
// STATE_DIR/dev (the host has no device-mapper nodes), a real block device node all the same.

import { describe, it, expect, onTestFinished } from 'vitest';
import { statSync } from 'node:fs';
import { status as Code } from '@grpc/grpc-js';
import { DEVICE_MODE_LABEL, DEVICE_OWNER_LABEL, deviceAccessOf } from '../../src/snapshotter/device-access.ts';
import { SnapshotError } from '../../src/snapshotter/errors.ts';
import { box, startHere } from './harness.ts';

const OWNER = DEVICE_OWNER_LABEL;
const MODE = DEVICE_MODE_LABEL;

describe('device node owner and mode labels', () => {
  it('parses UID:GID and octal permission bits, and refuses anything else', () => {
    expect(deviceAccessOf({}, 'active')).toBeNull();
    expect(deviceAccessOf({ [OWNER]: '1000:1001', [MODE]: '0660' }, 'active')).toEqual({ owner: { uid: 1000, gid: 1001 }, mode: 0o660 });
    expect(deviceAccessOf({ [MODE]: '640' }, 'active')).toEqual({ owner: null, mode: 0o640 });
    for (const owner of ['1000', 'root:root', '1000:', ':1000', '1:2:3', '-1:0', '4294967295:0', '1000:1000 ']) {
      expect(() => deviceAccessOf({ [OWNER]: owner }, 'active'), owner).toThrow(SnapshotError);
    }
    for (const mode of ['0868', '4755', '06600', 'rw', '', '0x1b6']) {
      expect(() => deviceAccessOf({ [MODE]: mode }, 'active'), mode).toThrow(SnapshotError);
    }
    // A view: read-only modes only, and an owner only beside one.
    expect(deviceAccessOf({ [OWNER]: '1000:1000', [MODE]: '0440' }, 'view')).toEqual({ owner: { uid: 1000, gid: 1000 }, mode: 0o440 });
    expect(deviceAccessOf({ [MODE]: '0444' }, 'view')).toEqual({ owner: null, mode: 0o444 });
    const writable: Record<string, string>[] = [{ [MODE]: '0640' }, { [OWNER]: '1000:1000' }, { [MODE]: '0602' }, { [OWNER]: '1000:1000', [MODE]: '0460' }];
    for (const labels of writable) {
      expect(() => deviceAccessOf(labels, 'view'), JSON.stringify(labels)).toThrow(/only be made read-only/);
    }
  });

  it("sets the node's owner and mode at Prepare, View and Mounts; refuses a writable view's node and a bad label before anything is made", async () => {
    const b = box();
    onTestFinished(() => b.cleanup());
    const s = await startHere(b);
    onTestFinished(() => s.stop());
    const c = s.client;

    const prepared = await c.Prepare({ key: 'vm-root', parent: '', labels: { [OWNER]: '1234:5678', [MODE]: '0660' } });
    const node = statSync(prepared.mounts[0].source);
    expect(node.isBlockDevice()).toBe(true);
    expect({ uid: node.uid, gid: node.gid, mode: node.mode & 0o7777 }).toEqual({ uid: 1234, gid: 5678, mode: 0o660 });
    // Without the labels a node stays as thinlayer makes it (root's, 0600).
    const plain = statSync((await c.Prepare({ key: 'plain', parent: '' })).mounts[0].source);
    expect({ uid: plain.uid, mode: plain.mode & 0o7777 }).toEqual({ uid: 0, mode: 0o600 });

    // A changed label is applied at the next Mounts.
    await c.Update({ info: { name: 'vm-root', labels: { [OWNER]: '4321:8765', [MODE]: '0600' } }, update_mask: { paths: ['labels'] } });
    const again = statSync((await c.Mounts({ key: 'vm-root' })).mounts[0].source);
    expect({ uid: again.uid, gid: again.gid, mode: again.mode & 0o7777 }).toEqual({ uid: 4321, gid: 8765, mode: 0o600 });

    await c.Commit({ name: 'layer', key: 'plain' });
    const refused = [
      () => c.View({ key: 'look-rw', parent: 'layer', labels: { [OWNER]: '1234:5678', [MODE]: '0660' } }),
      () => c.View({ key: 'look-owner', parent: 'layer', labels: { [OWNER]: '1234:5678' } }),
      () => c.Prepare({ key: 'bad-owner', parent: 'layer', labels: { [OWNER]: 'nobody' } }),
      () => c.Prepare({ key: 'bad-mode', parent: 'layer', labels: { [MODE]: '4755' } }),
    ];
    for (const call of refused) {
      const e = await call().catch((x) => x);
      expect(e.code).toBe(Code.INVALID_ARGUMENT);
    }
    expect((await c.List({})).map((i: { name: string }) => i.name).sort()).toEqual(['layer', 'vm-root']);

    const view = await c.View({ key: 'look', parent: 'layer', labels: { [OWNER]: '1234:5678', [MODE]: '0440' } });
    expect(view.mounts[0].options).toEqual(['ro']);
    const viewNode = statSync(view.mounts[0].source);
    expect({ uid: viewNode.uid, gid: viewNode.gid, mode: viewNode.mode & 0o7777 }).toEqual({ uid: 1234, gid: 5678, mode: 0o440 });
    // An Update cannot make a view's node writable afterwards.
    const e = await c.Update({ info: { name: 'look', labels: { [MODE]: '0660' } }, update_mask: { paths: [`labels.${MODE}`] } }).catch((x) => x);
    expect(e.code).toBe(Code.INVALID_ARGUMENT);
    expect((await c.Stat({ key: 'look' })).info.labels[MODE]).toBe('0440');
  }, 120_000);
});
