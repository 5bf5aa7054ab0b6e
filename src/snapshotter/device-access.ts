// Who may open the device node Mounts returns. A microVM runtime (Firecracker's jailer, Kata) hands
// the block device to a process that runs as an unprivileged user, so the node must be that user's.
// Two snapshot labels say so, under `containerd.io/snapshot/` because containerd passes a
// snapshotter no other labels (`ctr run --snapshotter-label`, the Go client's WithSnapshotterLabels):
//   containerd.io/snapshot/thinlayer.device-owner=UID:GID   (numeric ids)
//   containerd.io/snapshot/thinlayer.device-mode=0660       (octal permission bits, nothing else)
// They are checked at Prepare, View and Update, before anything is done (InvalidArgument), and
// applied to the node at every Mounts, so a node made again (after a reboot) gets them again.
//
// A view is a look at a committed layer other containers share: a writable node would let its
// owner change what the view shows behind the mount's `ro`. So on a view the labels are refused
// unless the mode they set has no write bit, and an owner needs such a mode beside it.

import { chmod, chown } from 'node:fs/promises';
import { SnapshotError } from './errors.ts';

export const DEVICE_OWNER_LABEL = 'containerd.io/snapshot/thinlayer.device-owner';
export const DEVICE_MODE_LABEL = 'containerd.io/snapshot/thinlayer.device-mode';

/** The largest id chown(2) takes as an id: (uid_t)-1 means "leave it unchanged". */
const MAX_ID = 0xfffffffe;
const WRITE_BITS = 0o222;

export interface DeviceAccess {
  owner: { uid: number; gid: number } | null;
  /** Permission bits (0..0o777). */
  mode: number | null;
}

function parseId(text: string): number | null {
  if (!/^\d{1,10}$/.test(text)) return null;
  const n = Number(text);
  return n <= MAX_ID ? n : null;
}

function parseOwner(value: string): DeviceAccess['owner'] {
  const [uid, gid, ...rest] = value.split(':').map(parseId);
  if (uid == null || gid == null || rest.length > 0)
    throw new SnapshotError('invalid-argument', `label ${DEVICE_OWNER_LABEL}: expected numeric UID:GID such as 1000:1000, got ${JSON.stringify(value)}`);
  return { uid, gid };
}

function parseMode(value: string): number {
  if (!/^0?[0-7]{3}$/.test(value))
    throw new SnapshotError('invalid-argument', `label ${DEVICE_MODE_LABEL}: expected octal permission bits such as 0660, got ${JSON.stringify(value)}`);
  return Number.parseInt(value, 8);
}

/**
 * The access the labels ask for (null: none, the node is left as it is made), checked for a
 * snapshot of this kind. Throws InvalidArgument for a malformed value, or a writable node for a view.
 */
export function deviceAccessOf(labels: Record<string, string>, kind: 'active' | 'view' | 'committed'): DeviceAccess | null {
  const ownerText = labels[DEVICE_OWNER_LABEL];
  const modeText = labels[DEVICE_MODE_LABEL];
  if (ownerText === undefined && modeText === undefined) return null;
  const access: DeviceAccess = { owner: ownerText === undefined ? null : parseOwner(ownerText), mode: modeText === undefined ? null : parseMode(modeText) };
  if (kind === 'view' && (access.mode === null || (access.mode & WRITE_BITS) !== 0)) {
    throw new SnapshotError(
      'invalid-argument',
      `a view's device node may only be made read-only: give ${DEVICE_MODE_LABEL} without write bits, such as 0440` +
        (access.mode === null ? '' : ` (got ${modeText})`),
    );
  }
  return access;
}

/** Sets the node's owner and mode as asked (idempotent: the same at every Mounts). */
export async function applyDeviceAccess(node: string, access: DeviceAccess | null): Promise<void> {
  if (!access) return;
  if (access.owner) await chown(node, access.owner.uid, access.owner.gid);
  if (access.mode !== null) await chmod(node, access.mode);
}
