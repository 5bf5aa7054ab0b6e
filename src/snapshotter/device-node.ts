// The device path Mounts returns must exist and be this device: containerd mounts it as it is.
// Where udev runs, /dev/mapper/NAME is there; without udev, devtmpfs still makes /dev/dm-N. When
// neither is this very device (another device's node, or no devtmpfs), thinlayer makes a node of
// its own in the state dir (`dev/`, private like the rest of it).

import { stat, mkdir, unlink } from 'node:fs/promises';
import type { DmInfo } from '../kernel/kernel-port.ts';
import type { StateDir } from '../events/state-dir.ts';
import { mknod, S_IFBLK } from '../host/libc.ts';
import { splitDevT } from '../kernel/dev-t.ts';

function sameDevice(rdev: number, info: DmInfo): boolean {
  const { major, minor } = splitDevT(rdev);
  return major === info.major && minor === info.minor;
}

async function isNodeOf(path: string, info: DmInfo): Promise<boolean> {
  const st = await stat(path).catch(() => null);
  return st?.isBlockDevice() === true && sameDevice(st.rdev, info);
}

/** An absolute path of a block device node for `info`, made in the state dir's `dev/` when none exists. */
export async function ensureDeviceNode(info: DmInfo, stateDir: StateDir): Promise<string> {
  for (const candidate of [info.devPath, `/dev/mapper/${info.name}`, `/dev/dm-${info.minor}`]) {
    if (await isNodeOf(candidate, info)) return candidate;
  }
  // Through the state dir's resolver: no symlink in the way is followed out of it.
  await mkdir(stateDir.path('dev'), { recursive: true, mode: 0o700 });
  const own = stateDir.path(`dev/${info.name}`);
  if (await isNodeOf(own, info)) return own;
  await unlink(own).catch(() => undefined); // a stale node of an earlier device of this name
  try {
    mknod(own, S_IFBLK | 0o600, info.major, info.minor);
    return own;
  } catch {
    // Not allowed to make nodes here (no CAP_MKNOD): the kernel's own path is the best there is.
    return info.devPath;
  }
}

/** Removes the node thinlayer made for a device that is gone (thin ids, and so names, are never reused). */
export async function forgetDeviceNode(dmName: string, stateDir: StateDir): Promise<void> {
  await unlink(stateDir.path(`dev/${dmName}`)).catch(() => undefined);
}

/**
 * The node each device was last answered with, so that Mounts (a read, called for every container
 * start) does not look at up to four paths again each time. An entry holds only for the device
 * numbers it was found for, and while its node is still that device: a device activated again under
 * other numbers, or a node removed behind thinlayer's back, is looked up anew, and a removed
 * device's entry goes with its node.
 */
export class DeviceNodes {
  readonly #known = new Map<string, { major: number; minor: number; path: string }>();

  async pathOf(info: DmInfo, stateDir: StateDir): Promise<string> {
    const known = this.#known.get(info.name);
    // One stat, not up to four: the node answered last time must still be this device (a node
    // removed or replaced behind thinlayer's back is looked up anew, not handed to containerd).
    if (known && known.major === info.major && known.minor === info.minor && (await isNodeOf(known.path, info))) return known.path;
    const path = await ensureDeviceNode(info, stateDir);
    this.#known.set(info.name, { major: info.major, minor: info.minor, path });
    return path;
  }

  async forget(dmName: string, stateDir: StateDir): Promise<void> {
    this.#known.delete(dmName);
    await forgetDeviceNode(dmName, stateDir);
  }
}
