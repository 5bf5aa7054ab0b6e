import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { findProgram, SYSTEM_TOOL_DIRS, systemTool } from '../../src/host/system-tools.ts';
import { chownSync } from 'node:fs';
import { growfs } from '../../src/kernel/linux/filesystem.ts';
import { uncompressedChunks } from '../../src/layers/compression.ts';

/** A PATH whose first directory holds fake programs that leave a marker file when run. */
function fakePath(names: string[]): { marker: string; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'thinlayer-fake-path-'));
  const marker = join(dir, 'ran');
  for (const name of names) {
    const file = join(dir, name);
    writeFileSync(file, `#!/bin/sh\necho "$0" >> ${marker}\nexit 0\n`);
    chmodSync(file, 0o755);
  }
  const before = process.env.PATH;
  process.env.PATH = `${dir}:${before ?? ''}`;
  onTestFinished(() => {
    process.env.PATH = before;
    rmSync(dir, { recursive: true, force: true });
  });
  return { marker, dir };
}

describe('system tools', () => {
  it('are found in the fixed system directories, not through a PATH with a fake mkfs.ext4 first', () => {
    const { dir } = fakePath(['mkfs.ext4', 'thin_ls', 'zstd']);
    for (const name of ['mkfs.ext4', 'thin_ls', 'zstd'] as const) {
      const found = systemTool(name);
      expect(found.startsWith(dir)).toBe(false);
      expect(SYSTEM_TOOL_DIRS.some((d) => found === `${d}/${name}`)).toBe(true);
    }
  });

  it('a grow runs the system xfs_growfs, never the one first in PATH', async () => {
    const { marker } = fakePath(['xfs_growfs', 'resize2fs']);
    const notXfs = mkdtempSync(join(tmpdir(), 'thinlayer-not-xfs-'));
    onTestFinished(() => rmSync(notXfs, { recursive: true, force: true }));
    // The fake would succeed; the real xfs_growfs fails on a directory that holds no XFS.
    await expect(growfs('/dev/null', notXfs, 'xfs')).rejects.toMatchObject({ operation: 'growfs' });
    expect(existsSync(marker)).toBe(false);
  });

  it('zstd data is read with the system zstd, never the one first in PATH', async () => {
    const work = mkdtempSync(join(tmpdir(), 'thinlayer-zstd-'));
    onTestFinished(() => rmSync(work, { recursive: true, force: true }));
    const plain = join(work, 'data');
    writeFileSync(plain, Buffer.alloc(4096, 7));
    execFileSync('/usr/bin/zstd', ['-q', plain, '-o', `${plain}.zst`]);
    const { marker } = fakePath(['zstd']);
    const chunks: Buffer[] = [];
    for await (const chunk of uncompressedChunks(`${plain}.zst`, 'zstd')) chunks.push(chunk);
    expect(Buffer.concat(chunks).equals(Buffer.alloc(4096, 7))).toBe(true);
    expect(existsSync(marker)).toBe(false);
  });

  it('refuses a program someone but root owns or can change (EACCES), and names a missing one (ENOENT)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'thinlayer-sysdir-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const program = join(dir, 'tool');
    writeFileSync(program, '#!/bin/sh\n');
    chmodSync(program, 0o755);
    expect(findProgram('tool', [dir])).toBe(program);
    chmodSync(program, 0o775);
    expect(() => findProgram('tool', [dir])).toThrow(expect.objectContaining({ errno: 13, message: expect.stringContaining('mode 775') }));
    chmodSync(program, 0o755);
    chownSync(program, 1000, 1000);
    expect(() => findProgram('tool', [dir])).toThrow(expect.objectContaining({ errno: 13, message: expect.stringContaining('uid 1000') }));
    expect(() => findProgram('nosuch', [dir])).toThrow(expect.objectContaining({ errno: 2, message: expect.stringContaining(`nosuch not found in ${dir}`) }));
  });
});
