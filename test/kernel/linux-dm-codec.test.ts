// The device-mapper ioctl codec and the mountinfo parser, without a kernel.

import { describe, expect, test } from 'vitest';
import {
  DM_HEADER_SIZE,
  DmFlag,
  decodeDev,
  decodeMessageReply,
  decodeNameList,
  decodeReply,
  decodeTargets,
  dmIoctlNumber,
  encodeMessage,
  encodeRequest,
  encodeRequestInto,
  encodeTargets,
  oversizedField,
} from '../../src/kernel/linux/dm-ioctl.ts';
import { parseMountinfo } from '../../src/kernel/linux/mountinfo.ts';

describe('dm ioctl codec', () => {
  test('ioctl numbers are _IOWR(0xfd, n, 312 bytes)', () => {
    expect(dmIoctlNumber(0)).toBe(0xc138fd00);
    expect(dmIoctlNumber(14)).toBe(0xc138fd0e);
  });

  test('a request carries version 4, sizes, flags, name, uuid and payload at the right offsets', () => {
    const buf = encodeRequest({ name: 'pool', uuid: 'u-1', flags: DmFlag.SUSPEND | DmFlag.NOFLUSH, targetCount: 2, payload: Buffer.from('abc') }, 1024);
    expect(buf.length).toBe(1024);
    expect(buf.readUInt32LE(0)).toBe(4);
    expect(buf.readUInt32LE(12)).toBe(1024);
    expect(buf.readUInt32LE(16)).toBe(DM_HEADER_SIZE);
    expect(buf.readUInt32LE(20)).toBe(2);
    expect(buf.readUInt32LE(28)).toBe((1 << 1) | (1 << 11));
    expect(buf.toString('utf8', 48, 52)).toBe('pool');
    expect(buf[52]).toBe(0);
    expect(buf.toString('utf8', 176, 179)).toBe('u-1');
    expect(buf.toString('utf8', DM_HEADER_SIZE, DM_HEADER_SIZE + 3)).toBe('abc');
    expect(encodeRequest({ payload: Buffer.alloc(5000) }, 1024).length).toBe(DM_HEADER_SIZE + 5000);
  });

  test('a reused buffer carries the same request as a fresh one: the last command leaves nothing in the header', () => {
    const buf = Buffer.alloc(2048, 0xa5); // as a previous reply might leave it
    encodeRequestInto(
      buf,
      { name: 'a-much-longer-previous-name', uuid: 'thinlayer-previous-uuid', flags: DmFlag.SUSPEND, targetCount: 3, payload: Buffer.from('old payload\0') },
      2048,
    );
    buf.writeBigUInt64LE(0xffffffffn, 40); // dev, as a reply sets it
    const req = { name: 'pool', flags: DmFlag.NOFLUSH, payload: Buffer.from('abc\0') };
    encodeRequestInto(buf, req, 1024);
    const fresh = encodeRequest(req, 1024);
    expect(buf.subarray(0, DM_HEADER_SIZE + 4)).toEqual(fresh.subarray(0, DM_HEADER_SIZE + 4));
    expect(decodeReply(buf)).toMatchObject({ name: 'pool', uuid: '', targetCount: 0, major: 0, minor: 0 });
    expect(() => encodeRequestInto(Buffer.alloc(512), req, 1024)).toThrow(RangeError);
    expect(() => encodeRequestInto(buf, { payload: Buffer.alloc(1000) }, 1024)).toThrow(RangeError);
  });

  test('names and uuids that do not fit the kernel fields are refused', () => {
    expect(oversizedField({ name: 'n'.repeat(127) })).toBeNull();
    expect(oversizedField({ name: 'n'.repeat(128) })).toMatch(/name/);
    expect(oversizedField({ uuid: 'u'.repeat(129) })).toMatch(/uuid/);
  });

  test('device numbers decode from the kernel encoding, including minors above 255', () => {
    expect(decodeDev((253n << 8n) | 3n)).toEqual({ major: 253, minor: 3 });
    const minor = 0x1234;
    expect(decodeDev(BigInt((minor & 0xff) | (253 << 8) | ((minor & ~0xff) << 12)))).toEqual({ major: 253, minor });
  });

  test('a reply decodes its header and its data area', () => {
    const buf = encodeRequest({ name: 'thin1', uuid: 'tl-x' }, 512);
    buf.writeUInt32LE(4, 0);
    buf.writeUInt32LE(47, 4);
    buf.writeInt32LE(2, 24);
    buf.writeUInt32LE(DmFlag.ACTIVE_PRESENT | DmFlag.DATA_OUT, 28);
    buf.writeUInt32LE(9, 32);
    buf.writeBigUInt64LE((253n << 8n) | 7n, 40);
    buf.write('reply text\0', DM_HEADER_SIZE);
    buf.writeUInt32LE(DM_HEADER_SIZE + 11, 12);
    const r = decodeReply(buf);
    expect(r).toMatchObject({ version: [4, 47, 0], openCount: 2, eventNr: 9, major: 253, minor: 7, name: 'thin1', uuid: 'tl-x' });
    expect(decodeMessageReply(r)).toBe('reply text');
    expect(decodeMessageReply({ ...r, flags: 0 })).toBe('');
  });

  test('targets encode with next relative to each spec and decode with next relative to the first', () => {
    const targets = [
      { start: 0, length: 2048, type: 'thin-pool', params: '7:1 7:0 128 0 0' },
      { start: 2048, length: 4096, type: 'linear', params: '7:2 0' },
    ];
    const encoded = encodeTargets(targets);
    expect(encoded.length % 8).toBe(0);
    const firstSize = encoded.readUInt32LE(20);
    expect(firstSize).toBe(56); // 40 + 15 bytes of params + NUL
    // The kernel answers TABLE_STATUS with offsets from the first spec: rewrite them that way.
    const reply = Buffer.from(encoded);
    reply.writeUInt32LE(firstSize, 20);
    reply.writeUInt32LE(encoded.length, firstSize + 20);
    expect(decodeTargets(reply, 2)).toEqual(targets);
  });

  test('a message is a sector then the text', () => {
    const m = encodeMessage(0, 'create_snap 2 1');
    expect(m.readBigUInt64LE(0)).toBe(0n);
    expect(m.toString('utf8', 8, 8 + 15)).toBe('create_snap 2 1');
    expect(m[23]).toBe(0);
  });

  test('the device list follows next offsets and stops at next 0; dev 0 means empty', () => {
    const rec = (name: string, minor: number, next: number) => {
      const b = Buffer.alloc(next || 32);
      b.writeBigUInt64LE((253n << 8n) | BigInt(minor), 0);
      b.writeUInt32LE(next, 8);
      b.write(`${name}\0`, 12);
      return b;
    };
    const list = Buffer.concat([rec('pool', 0, 40), rec('thin', 1, 0)]);
    expect(decodeNameList(list)).toEqual([
      { name: 'pool', major: 253, minor: 0 },
      { name: 'thin', major: 253, minor: 1 },
    ]);
    expect(decodeNameList(Buffer.alloc(16))).toEqual([]);
  });
});

describe('mountinfo', () => {
  test('parses fields, optional fields and octal escapes, merging mount and superblock options', () => {
    const text = [
      '36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw,errors=continue',
      '40 30 253:4 / /run/thinlayer/web1 ro,relatime shared:7 - ext4 /dev/dm-4 ro,discard',
      '',
    ].join('\n');
    expect(parseMountinfo(text)).toEqual([
      { source: '/dev/root', major: 98, minor: 0, mountpoint: '/mnt/with space', fstype: 'ext3', options: ['rw', 'noatime', 'errors=continue'] },
      { source: '/dev/dm-4', major: 253, minor: 4, mountpoint: '/run/thinlayer/web1', fstype: 'ext4', options: ['ro', 'relatime', 'discard'] },
    ]);
  });
});
