import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { StateError } from '../../src/errors/index.ts';
import { openStateDir } from '../../src/events/state-dir.ts';
import { tempDir } from './helpers.ts';

const modeOf = (p: string) => fs.statSync(p).mode & 0o777;

describe('openStateDir', () => {
  it('creates a missing state dir, parents included, private to its owner', async () => {
    const dir = path.join(tempDir(), 'a', 'b', 'state');
    const stateDir = await openStateDir(dir);
    expect(stateDir.root).toBe(dir);
    expect(fs.statSync(dir).isDirectory()).toBe(true);
    expect(modeOf(dir)).toBe(0o700);
  });

  it('makes an existing state dir private again when group or others can enter it', async () => {
    const dir = path.join(tempDir(), 'state');
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.chmodSync(dir, 0o755);
    await openStateDir(dir);
    expect(modeOf(dir)).toBe(0o700);
  });

  it('resolves a relative path to an absolute root', async () => {
    const base = tempDir();
    const cwd = process.cwd();
    process.chdir(base);
    try {
      const stateDir = await openStateDir('rel-state');
      expect(stateDir.root).toBe(path.join(fs.realpathSync(base), 'rel-state'));
    } finally {
      process.chdir(cwd);
    }
  });

  it('refuses a state dir that is a symlink, even to a real directory', async () => {
    const base = tempDir();
    fs.mkdirSync(path.join(base, 'real'));
    fs.symlinkSync(path.join(base, 'real'), path.join(base, 'state'));
    await expect(openStateDir(path.join(base, 'state'))).rejects.toThrow(StateError);
    await expect(openStateDir(path.join(base, 'state'))).rejects.toThrow(/is a symlink/);
  });

  it('refuses a state dir that is a file', async () => {
    const file = path.join(tempDir(), 'state');
    fs.writeFileSync(file, 'not a dir');
    await expect(openStateDir(file)).rejects.toThrow(/is not a directory/);
  });

  it('refuses a state dir owned by another user (tests run as root, as thinlayer does)', async () => {
    const dir = path.join(tempDir(), 'state');
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.chownSync(dir, 4321, 4321);
    await expect(openStateDir(dir)).rejects.toThrow(/owned by uid 4321/);
  });
});

describe('StateDir.path', () => {
  it('joins names inside the state dir, existing or not', async () => {
    const stateDir = await openStateDir(path.join(tempDir(), 'state'));
    fs.mkdirSync(path.join(stateDir.root, 'sim'));
    expect(stateDir.path('events.ndjson')).toBe(path.join(stateDir.root, 'events.ndjson'));
    expect(stateDir.path('sim/disks/data.img')).toBe(path.join(stateDir.root, 'sim/disks/data.img'));
    expect(stateDir.path('./sim//x')).toBe(path.join(stateDir.root, 'sim/x'));
  });

  it.each([
    ['../x', /`\.\.` segment/],
    ['sim/../../x', /`\.\.` segment/],
    ['a/..', /`\.\.` segment/],
    ['/etc/passwd', /absolute/],
    ['', /names the state dir itself/],
    ['.', /names the state dir itself/],
    ['a\0b', /NUL/],
  ])('refuses %j', async (rel, why) => {
    const stateDir = await openStateDir(path.join(tempDir(), 'state'));
    expect(() => stateDir.path(rel)).toThrow(StateError);
    expect(() => stateDir.path(rel)).toThrow(why);
  });

  it('refuses a name whose existing component is a symlink, wherever it points', async () => {
    const base = tempDir();
    const stateDir = await openStateDir(path.join(base, 'state'));
    fs.mkdirSync(path.join(base, 'elsewhere'));
    fs.mkdirSync(path.join(stateDir.root, 'sub'));
    fs.symlinkSync(path.join(base, 'elsewhere'), path.join(stateDir.root, 'out'));
    fs.symlinkSync(path.join(stateDir.root, 'sub'), path.join(stateDir.root, 'sub-link'));
    fs.symlinkSync(path.join(base, 'elsewhere', 'target'), path.join(stateDir.root, 'sub', 'file-link'));

    expect(() => stateDir.path('out/events.ndjson')).toThrow(/is a symlink/);
    expect(() => stateDir.path('out')).toThrow(/is a symlink/);
    expect(() => stateDir.path('sub-link/x')).toThrow(/is a symlink/); // even one that stays inside
    expect(() => stateDir.path('sub/file-link')).toThrow(/is a symlink/); // a dangling last component
    expect(stateDir.path('sub/plain')).toBe(path.join(stateDir.root, 'sub/plain'));
  });
});
