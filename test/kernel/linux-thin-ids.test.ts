import { describe, it, expect, onTestFinished } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseThinLsIds, parseThinDumpIds, readIds, ThinToolsReader } from '../../src/kernel/linux/metadata-thin-ids.ts';
import { thinTargetOf } from '../../src/doctor/inspect.ts';
import { KernelError, ERRNO } from '../../src/errors/index.ts';
import type { KernelPort } from '../../src/kernel/kernel-port.ts';

const METADATA_XML = `<superblock uuid="" time="1" transaction="7" flags="0" version="2" data_block_size="128" nr_data_blocks="1024">
  <device dev_id="0" mapped_blocks="0" transaction="0" creation_time="0" snap_time="0"></device>
  <device dev_id="3" mapped_blocks="0" transaction="2" creation_time="1" snap_time="1"></device>
  <device dev_id="99" mapped_blocks="0" transaction="5" creation_time="1" snap_time="1"></device>
</superblock>`;

/** A real dm-thin metadata file with thin ids 0, 3 and 99, written by thin_restore. */
function metadataFile(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thinlayer-thin-ids-'));
  onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.writeFileSync(path.join(dir, 'm.xml'), METADATA_XML);
  const file = path.join(dir, 'metadata.img');
  fs.writeFileSync(file, '');
  fs.truncateSync(file, 8 << 20);
  execFileSync('/usr/sbin/thin_restore', ['-i', path.join(dir, 'm.xml'), '-o', file]);
  return file;
}

describe('thin ids from thin-provisioning-tools', () => {
  it('parses thin_ls and thin_dump output', () => {
    expect(parseThinLsIds(' 0 \n 3 \n99 \n')).toEqual([0, 3, 99]);
    expect(parseThinLsIds('')).toEqual([]);
    expect(() => parseThinLsIds('DEV\n 0\n')).toThrow(/unexpected thin_ls line/);
    expect(parseThinDumpIds(METADATA_XML)).toEqual([0, 3, 99]);
    expect(() => parseThinDumpIds('')).toThrow(/no superblock/);
  });

  it('reads the ids of real metadata with the installed tools', async () => {
    expect(await readIds(metadataFile(), false)).toEqual([0, 3, 99]);
  });

  it('asks for a metadata snapshot, and fails when the metadata holds none', async () => {
    await expect(readIds(metadataFile(), true)).rejects.toThrow();
  });

  it('reserves a metadata snapshot around the read, replacing a stale one, and releases it', async () => {
    const file = metadataFile();
    const messages: string[] = [];
    let held = true; // a reader died holding one
    const kernel = {
      async message(_name: string, text: string) {
        messages.push(text);
        if (text === 'reserve_metadata_snap') {
          if (held) throw new KernelError('dm.message reserve_metadata_snap', 'pool', ERRNO.EBUSY);
          held = true;
        }
        if (text === 'release_metadata_snap') held = false;
        return '';
      },
    } as unknown as KernelPort;
    // The file holds no snapshot, so the snapshot read fails; the release must still happen.
    await expect(new ThinToolsReader(kernel).listThinIds('pool', file)).rejects.toThrow();
    expect(messages).toEqual(['reserve_metadata_snap', 'release_metadata_snap', 'reserve_metadata_snap', 'release_metadata_snap']);
    expect(held).toBe(false);
  });

  it('reads live metadata of a pool that takes no messages (read-only)', async () => {
    const file = metadataFile();
    const kernel = {
      async message() {
        throw new KernelError('dm.message reserve_metadata_snap', 'pool', ERRNO.EOPNOTSUPP);
      },
    } as unknown as KernelPort;
    expect(await new ThinToolsReader(kernel).listThinIds('pool', file)).toEqual([0, 3, 99]);
  });
});

describe('thin tables', () => {
  it.each([
    [[{ start: 0, length: 8, type: 'thin', params: '253:0 7' }], { pool: '253:0', thinId: 7 }],
    [[{ start: 0, length: 8, type: 'thin', params: '253:0 7 7:3' }], { pool: '253:0', thinId: 7 }],
    [[{ start: 0, length: 8, type: 'linear', params: '7:0 0' }], null],
    [[], null],
    [
      [
        { start: 0, length: 8, type: 'thin', params: '253:0 7' },
        { start: 8, length: 8, type: 'thin', params: '253:0 8' },
      ],
      null,
    ],
  ])('%j -> %j', (table, expected) => {
    expect(thinTargetOf(table)).toEqual(expected);
  });
});
