import { describe, it, expect, onTestFinished } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { splitDevT, makeDevT, majorMinorOf } from '../../src/kernel/dev-t.ts';
import { copyTreeExact } from '../../src/kernel/sim/copy-tree.ts';
import { mknod, S_IFCHR } from '../../src/host/libc.ts';

describe('dev_t', () => {
  it('splits and makes device numbers as glibc does, minors above 255 and majors above 4095 included', () => {
    for (const [major, minor] of [
      [7, 0],
      [253, 3],
      [253, 300],
      [259, 1048575],
      [4096, 256],
      [1, 1 << 19],
    ]) {
      const dev = makeDevT(major, minor);
      expect(splitDevT(dev)).toEqual({ major, minor });
      expect(splitDevT(Number(dev))).toEqual({ major, minor });
      expect(majorMinorOf(dev)).toBe(`${major}:${minor}`);
    }
    // The layout itself: minor 300 is 0x12c, its low byte at the bottom and its high bits from bit 20.
    expect(makeDevT(253, 300)).toBe(0x2cn | (253n << 8n) | (1n << 20n));
  });

  it('agrees with what stat reports for a real device node', () => {
    const st = fs.statSync('/dev/null');
    expect(splitDevT(st.rdev)).toEqual({ major: 1, minor: 3 });
  });

  it('the simulated kernel copies a device node with a minor above 255 exactly', () => {
    if (process.getuid?.() !== 0) throw new Error('making device nodes needs root: run this test as root');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'thinlayer-devt-'));
    onTestFinished(() => fs.rmSync(dir, { recursive: true, force: true }));
    fs.mkdirSync(path.join(dir, 'from'));
    mknod(path.join(dir, 'from', 'node'), S_IFCHR | 0o600, 240, 300);
    copyTreeExact(path.join(dir, 'from'), path.join(dir, 'to'));
    expect(splitDevT(fs.statSync(path.join(dir, 'to', 'node')).rdev)).toEqual({ major: 240, minor: 300 });
  });
});
