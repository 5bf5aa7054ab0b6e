// The device-mapper ioctl ABI (include/uapi/linux/dm-ioctl.h, interface version 4), as pure
// encode/decode functions over Buffers. Every command sends one struct dm_ioctl header followed by
// a command-specific payload, and the kernel answers in the same buffer.

import type { DmTarget } from '../kernel-port.ts';

/** sizeof(struct dm_ioctl); the payload starts right after it. */
export const DM_HEADER_SIZE = 312;
const DM_NAME_LEN = 128;
const DM_UUID_LEN = 129;
const TARGET_SPEC_SIZE = 40; // struct dm_target_spec without its params
const TARGET_TYPE_LEN = 16;

export const DmCommand = {
  VERSION: 0,
  LIST_DEVICES: 2,
  DEV_CREATE: 3,
  DEV_REMOVE: 4,
  DEV_SUSPEND: 6,
  DEV_STATUS: 7,
  TABLE_LOAD: 9,
  TABLE_STATUS: 12,
  TARGET_MSG: 14,
} as const;
export type DmCommandName = keyof typeof DmCommand;

export const DmFlag = {
  READONLY: 1 << 0,
  SUSPEND: 1 << 1,
  STATUS_TABLE: 1 << 4,
  ACTIVE_PRESENT: 1 << 5,
  INACTIVE_PRESENT: 1 << 6,
  BUFFER_FULL: 1 << 8,
  NOFLUSH: 1 << 11,
  DATA_OUT: 1 << 16,
  DEFERRED_REMOVE: 1 << 17,
} as const;

/** _IOWR(0xfd, command, struct dm_ioctl). */
export function dmIoctlNumber(command: number): number {
  return 0xc138fd00 + command;
}

export interface DmRequest {
  name?: string;
  uuid?: string;
  flags?: number;
  targetCount?: number;
  payload?: Buffer;
}

export interface DmReply {
  version: [number, number, number];
  flags: number;
  openCount: number;
  eventNr: number;
  targetCount: number;
  major: number;
  minor: number;
  name: string;
  uuid: string;
  /** The bytes the kernel wrote after the header (data_start .. data_size): a view of the ioctl buffer. */
  data: Buffer;
}

/** Names and uuids longer than the kernel's fields cannot be sent; null when they fit. */
export function oversizedField(req: DmRequest): string | null {
  if (req.name !== undefined && Buffer.byteLength(req.name) >= DM_NAME_LEN) return `name longer than ${DM_NAME_LEN - 1} bytes`;
  if (req.uuid !== undefined && Buffer.byteLength(req.uuid) >= DM_UUID_LEN) return `uuid longer than ${DM_UUID_LEN - 1} bytes`;
  return null;
}

/** The data_size of a request: `bufferSize`, or more when the payload needs it. */
export function requestSize(req: DmRequest, bufferSize: number): number {
  return Math.max(bufferSize, DM_HEADER_SIZE + (req.payload?.length ?? 0));
}

/** A new zeroed buffer holding the request: header and payload, `requestSize` bytes in all. */
export function encodeRequest(req: DmRequest, bufferSize: number): Buffer {
  const size = requestSize(req, bufferSize);
  const buf = Buffer.alloc(size);
  encodeRequestInto(buf, req, size);
  return buf;
}

/**
 * Writes the request into `buf` (at least `dataSize` bytes, which must hold the header and the
 * payload), so one buffer can serve every command. Only the header is cleared: the kernel reads
 * nothing after the payload (target params and messages are NUL-terminated inside it), and on the
 * way back it copies only the data_size it reports, which says where its answer ends.
 */
export function encodeRequestInto(buf: Buffer, req: DmRequest, dataSize: number): void {
  const payloadLength = req.payload?.length ?? 0;
  if (dataSize < DM_HEADER_SIZE + payloadLength || buf.length < dataSize)
    throw new RangeError(`a ${buf.length}-byte buffer cannot hold a ${dataSize}-byte request with a ${payloadLength}-byte payload`);
  buf.fill(0, 0, DM_HEADER_SIZE);
  buf.writeUInt32LE(4, 0); // interface version 4.0.0: any 4.x kernel accepts it
  buf.writeUInt32LE(dataSize, 12); // data_size: how much the kernel may read and fill
  buf.writeUInt32LE(DM_HEADER_SIZE, 16); // data_start
  buf.writeUInt32LE(req.targetCount ?? 0, 20);
  buf.writeUInt32LE((req.flags ?? 0) >>> 0, 28);
  if (req.name) buf.write(req.name, 48, DM_NAME_LEN - 1, 'utf8');
  if (req.uuid) buf.write(req.uuid, 176, DM_UUID_LEN - 1, 'utf8');
  req.payload?.copy(buf, DM_HEADER_SIZE);
}

const EMPTY = Buffer.alloc(0);

/** The kernel's answer in `buf`. `data` is a view of `buf`, not a copy: read it before reusing `buf`. */
export function decodeReply(buf: Buffer): DmReply {
  const dataSize = buf.readUInt32LE(12);
  const dataStart = buf.readUInt32LE(16);
  const dev = buf.readBigUInt64LE(40);
  return {
    version: [buf.readUInt32LE(0), buf.readUInt32LE(4), buf.readUInt32LE(8)],
    flags: buf.readUInt32LE(28),
    openCount: buf.readInt32LE(24),
    eventNr: buf.readUInt32LE(32),
    targetCount: buf.readUInt32LE(20),
    ...decodeDev(dev),
    name: cString(buf, 48, DM_NAME_LEN),
    uuid: cString(buf, 176, DM_UUID_LEN),
    data: dataSize > dataStart ? buf.subarray(dataStart, Math.min(dataSize, buf.length)) : EMPTY,
  };
}

/** The kernel's huge_encode_dev: minor's low byte, then major, then minor's high bits. */
export function decodeDev(dev: bigint): { major: number; minor: number } {
  const d = Number(dev & 0xffffffffn);
  return { major: (d >>> 8) & 0xfff, minor: (d & 0xff) | ((d >>> 12) & 0xfff00) };
}

function cString(buf: Buffer, offset: number, max: number): string {
  const end = buf.indexOf(0, offset);
  return buf.toString('utf8', offset, end < 0 || end > offset + max ? offset + max : end);
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

/** TABLE_LOAD payload: one dm_target_spec per target, each followed by its params, 8-byte aligned. */
export function encodeTargets(targets: DmTarget[]): Buffer {
  const parts: Buffer[] = [];
  for (const t of targets) {
    if (Buffer.byteLength(t.type) >= TARGET_TYPE_LEN) throw new RangeError(`target type too long: ${t.type}`);
    const size = align8(TARGET_SPEC_SIZE + Buffer.byteLength(t.params) + 1);
    const spec = Buffer.alloc(size);
    spec.writeBigUInt64LE(BigInt(t.start), 0);
    spec.writeBigUInt64LE(BigInt(t.length), 8);
    spec.writeInt32LE(0, 16);
    spec.writeUInt32LE(size, 20); // on load, `next` is relative to this spec
    spec.write(t.type, 24, 'utf8');
    spec.write(t.params, TARGET_SPEC_SIZE, 'utf8');
    parts.push(spec);
  }
  return Buffer.concat(parts);
}

/** TABLE_STATUS reply: `count` specs; here `next` is relative to the first spec. */
export function decodeTargets(data: Buffer, count: number): DmTarget[] {
  const targets: DmTarget[] = [];
  let offset = 0;
  for (let i = 0; i < count; i++) {
    if (offset + TARGET_SPEC_SIZE > data.length) throw new RangeError(`target ${i} lies outside the reply (${data.length} bytes)`);
    targets.push({
      start: Number(data.readBigUInt64LE(offset)),
      length: Number(data.readBigUInt64LE(offset + 8)),
      type: cString(data, offset + 24, TARGET_TYPE_LEN),
      params: cString(data, offset + TARGET_SPEC_SIZE, data.length - offset - TARGET_SPEC_SIZE),
    });
    offset = data.readUInt32LE(offset + 20);
  }
  return targets;
}

/** TARGET_MSG payload: struct dm_target_msg { u64 sector; char message[]; }. */
export function encodeMessage(sector: number, message: string): Buffer {
  const buf = Buffer.alloc(align8(8 + Buffer.byteLength(message) + 1));
  buf.writeBigUInt64LE(BigInt(sector), 0);
  buf.write(message, 8, 'utf8');
  return buf;
}

/** The reply text of a message, present only when the kernel set DM_DATA_OUT_FLAG. */
export function decodeMessageReply(reply: DmReply): string {
  if (!(reply.flags & DmFlag.DATA_OUT) || reply.data.length === 0) return '';
  return cString(reply.data, 0, reply.data.length);
}

export interface DmListedDevice {
  name: string;
  major: number;
  minor: number;
}

/** LIST_DEVICES reply: struct dm_name_list records chained by `next` (relative to each record). */
export function decodeNameList(data: Buffer): DmListedDevice[] {
  const devices: DmListedDevice[] = [];
  if (data.length < 12 || data.readBigUInt64LE(0) === 0n) return devices; // dev 0: no devices
  let offset = 0;
  for (;;) {
    const { major, minor } = decodeDev(data.readBigUInt64LE(offset));
    const next = data.readUInt32LE(offset + 8);
    devices.push({ name: cString(data, offset + 12, next ? next - 12 : data.length - offset - 12), major, minor });
    if (next === 0) return devices;
    offset += next;
    if (offset + 12 > data.length) throw new RangeError('device list record lies outside the reply');
  }
}
