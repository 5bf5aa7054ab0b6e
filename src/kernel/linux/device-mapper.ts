// Device-mapper through raw ioctls on /dev/mapper/control (see docs/architecture.md, "Kernel
// backend", for why not libdevmapper). Each method is one kernel command, or the short fixed
// sequence the port promises (create = DEV_CREATE, TABLE_LOAD, resume), with the kernel's errno.

import { splitDevT } from '../dev-t.ts';
import fs from 'node:fs';
import { ERRNO, KernelError } from '../../errors/index.ts';
import type { DmInfo, DmTarget } from '../kernel-port.ts';
import {
  type DmCommandName,
  type DmReply,
  type DmRequest,
  DmCommand,
  DmFlag,
  decodeMessageReply,
  decodeNameList,
  decodeReply,
  decodeTargets,
  dmIoctlNumber,
  encodeMessage,
  encodeRequestInto,
  encodeTargets,
  oversizedField,
  requestSize,
} from './dm-ioctl.ts';
import { O_RDWR, close, ioctlBuffer, open } from '../../host/libc.ts';

export const DM_CONTROL = '/dev/mapper/control';
const INITIAL_BUFFER = 16 * 1024;
const MAX_BUFFER = 64 * 1024 * 1024;

export class DeviceMapper {
  #fd: number | null = null;
  /** The one ioctl buffer every command is written into and answered in; it only ever grows. */
  #buffer = Buffer.alloc(0);
  /** Per command, the data_size its reply last needed, when that took a retry. */
  readonly #fits = new Map<DmCommandName, number>();

  #control(site: { operation: string; device: string }): number {
    this.#fd ??= open(DM_CONTROL, O_RDWR, site);
    return this.#fd;
  }

  /**
   * One ioctl. When the kernel sets DM_BUFFER_FULL_FLAG the reply did not fit: the command is sent
   * again with a buffer twice as large, and later calls of that command start at the size that fit.
   * Only read-only commands (lists, statuses) can fill a buffer.
   *
   * The reply's `data` is a view of the shared buffer: it is valid until the next command, so
   * every caller decodes it before sending another.
   */
  #run(command: DmCommandName, operation: string, req: DmRequest, bufferSize = INITIAL_BUFFER): DmReply {
    const site = { operation, device: req.name ?? '' };
    const tooLong = oversizedField(req);
    if (tooLong) throw new KernelError(operation, site.device, ERRNO.EINVAL, tooLong);
    const fd = this.#control(site);
    const first = requestSize(req, Math.max(bufferSize, this.#fits.get(command) ?? 0));
    for (let size = first; ; size *= 2) {
      if (this.#buffer.length < size) this.#buffer = Buffer.alloc(size);
      const buf = this.#buffer;
      encodeRequestInto(buf, req, size);
      ioctlBuffer(fd, dmIoctlNumber(DmCommand[command]), buf, site);
      const reply = decodeReply(buf);
      if (!(reply.flags & DmFlag.BUFFER_FULL)) {
        if (size > first) this.#fits.set(command, size);
        return reply;
      }
      if (size * 2 > MAX_BUFFER) throw new KernelError(operation, site.device, ERRNO.ENOMEM, `reply larger than ${MAX_BUFFER} bytes`);
    }
  }

  version(): [number, number, number] {
    return this.#run('VERSION', 'dm.version', {}).version;
  }

  listDevices(): DmInfo[] {
    const listed = decodeNameList(this.#run('LIST_DEVICES', 'dm.list', {}).data);
    const infos: DmInfo[] = [];
    for (const { name } of listed) {
      const info = this.info(name); // null: removed since the list was taken
      if (info) infos.push(info);
    }
    return infos;
  }

  info(name: string): DmInfo | null {
    try {
      return toInfo(this.#run('DEV_STATUS', 'dm.info', { name }));
    } catch (e) {
      if (e instanceof KernelError && e.is('ENXIO')) return null;
      throw e;
    }
  }

  create(name: string, uuid: string, table?: DmTarget[], opts: { readOnly?: boolean } = {}): DmInfo {
    // The kernel answers EBUSY when the name or the uuid is taken. Both DEV_CREATE and the resume
    // answer with the device's status (name and uuid included), so no DEV_STATUS follows.
    let status = this.#run('DEV_CREATE', 'dm.create', { name, uuid, flags: opts.readOnly ? DmFlag.READONLY : 0 });
    if (table) {
      try {
        this.#load(name, table, opts.readOnly ?? false);
        status = this.#run('DEV_SUSPEND', 'dm.resume', { name, flags: 0 });
      } catch (e) {
        // Leave nothing half-made behind: a device without a table is of no use to anyone.
        try {
          this.remove(name);
        } catch {
          // the load's error is the one worth reporting
        }
        throw e;
      }
    }
    return toInfo(status);
  }

  load(name: string, table: DmTarget[]): void {
    this.#load(name, table, false);
  }

  #load(name: string, table: DmTarget[], readOnly: boolean): void {
    this.#run('TABLE_LOAD', 'dm.load', {
      name,
      flags: readOnly ? DmFlag.READONLY : 0,
      targetCount: table.length,
      payload: encodeTargets(table),
    });
  }

  suspend(name: string, opts: { noFlush?: boolean } = {}): void {
    this.#run('DEV_SUSPEND', 'dm.suspend', { name, flags: DmFlag.SUSPEND | (opts.noFlush ? DmFlag.NOFLUSH : 0) });
  }

  resume(name: string): void {
    this.#run('DEV_SUSPEND', 'dm.resume', { name, flags: 0 });
  }

  remove(name: string, opts: { deferred?: boolean } = {}): void {
    // With DM_DEFERRED_REMOVE the kernel answers 0 for an open device and removes it on last close.
    this.#run('DEV_REMOVE', 'dm.remove', { name, flags: opts.deferred ? DmFlag.DEFERRED_REMOVE : 0 });
  }

  table(name: string): DmTarget[] {
    const reply = this.#run('TABLE_STATUS', 'dm.table', { name, flags: DmFlag.STATUS_TABLE });
    return decodeTargets(reply.data, reply.targetCount);
  }

  status(name: string): DmTarget[] {
    const reply = this.#run('TABLE_STATUS', 'dm.status', { name });
    return decodeTargets(reply.data, reply.targetCount);
  }

  message(name: string, message: string, sector = 0): string {
    // A large first buffer: a message is not idempotent, so it must not need the full-buffer retry.
    const reply = this.#run('TARGET_MSG', `dm.message ${message}`, { name, payload: encodeMessage(sector, message) }, 256 * 1024);
    return decodeMessageReply(reply);
  }

  close(): void {
    if (this.#fd !== null) close(this.#fd);
    this.#fd = null;
  }
}

function toInfo(r: DmReply): DmInfo {
  return {
    name: r.name,
    uuid: r.uuid,
    major: r.major,
    minor: r.minor,
    openCount: r.openCount,
    suspended: (r.flags & DmFlag.SUSPEND) !== 0,
    liveTable: (r.flags & DmFlag.ACTIVE_PRESENT) !== 0,
    inactiveTable: (r.flags & DmFlag.INACTIVE_PRESENT) !== 0,
    readOnly: (r.flags & DmFlag.READONLY) !== 0,
    eventNr: r.eventNr,
    targetCount: r.targetCount,
    devPath: devicePath(r.name, r.major, r.minor),
  };
}

/**
 * /dev/mapper/NAME when udev (or anyone) made that node for this very device, else the
 * devtmpfs node /dev/dm-MINOR, which the kernel itself creates.
 */
function devicePath(name: string, major: number, minor: number): string {
  const mapperPath = `/dev/mapper/${name}`;
  try {
    const st = fs.statSync(mapperPath, { bigint: true });
    const dev = splitDevT(st.rdev);
    if (st.isBlockDevice() && dev.major === major && dev.minor === minor) return mapperPath;
  } catch {
    // no such node
  }
  return `/dev/dm-${minor}`;
}
