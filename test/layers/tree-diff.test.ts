// The diff of a device against its layer: a tree changed in every way the diff must see (a file
// added, changed and deleted; a directory replaced by a file and a file by a directory; a directory
// emptied and refilled; a mode, an owner and an xattr changed with no content change; hard links;
// symlinks; a device node; a file capability). The listing names exactly those, and the change tar,
// applied onto a copy of the layer, reproduces the device's tree file by file with its metadata.

import { describe, it, expect, onTestFinished } from 'vitest';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  appendFileSync,
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  linkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { diffTrees } from '../../src/layers/tree-diff.ts';
import { changeTar } from '../../src/layers/change-tar.ts';
import { applyLayer } from '../../src/layers/apply-layer.ts';
import { xattrsOf } from '../../src/layers/dir-source.ts';
import { lsetxattr, mknod, S_IFCHR } from '../../src/host/libc.ts';

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
}

function tmp(): string {
  const dir = mkdtempSync(join(tmpdir(), 'thinlayer-diff-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The layer: what the device was snapshotted from. */
function makeLayer(root: string): void {
  mkdirSync(join(root, 'etc'));
  writeFileSync(join(root, 'etc/hosts'), '127.0.0.1 localhost\n');
  writeFileSync(join(root, 'etc/changed'), 'before\n');
  writeFileSync(join(root, 'etc/deleted'), 'gone soon\n');
  writeFileSync(join(root, 'etc/mode'), 'same content\n');
  writeFileSync(join(root, 'etc/owner'), 'same content\n');
  writeFileSync(join(root, 'etc/xattr'), 'same content\n');
  mkdirSync(join(root, 'becomes-file'));
  writeFileSync(join(root, 'becomes-file/inner'), 'x');
  writeFileSync(join(root, 'becomes-dir'), 'a file for now');
  mkdirSync(join(root, 'refilled'));
  writeFileSync(join(root, 'refilled/old1'), '1');
  writeFileSync(join(root, 'refilled/old2'), '2');
  writeFileSync(join(root, 'linked'), 'shared content\n');
  symlinkSync('etc/hosts', join(root, 'link'));
  mkdirSync(join(root, 'bin'));
  writeFileSync(join(root, 'bin/ping'), 'an executable');
  mkdirSync(join(root, 'untouched'));
  writeFileSync(join(root, 'untouched/file'), 'never changed');
}

/** The device: the layer as the container left it. */
function changeDevice(root: string): void {
  writeFileSync(join(root, 'etc/added'), 'new file\n');
  appendFileSync(join(root, 'etc/changed'), 'after\n');
  rmSync(join(root, 'etc/deleted'));
  chmodSync(join(root, 'etc/mode'), 0o600);
  chownSync(join(root, 'etc/owner'), 1234, 5678);
  lsetxattr(join(root, 'etc/xattr'), 'user.note', Buffer.from('hello'));
  rmSync(join(root, 'becomes-file'), { recursive: true });
  writeFileSync(join(root, 'becomes-file'), 'now a file');
  rmSync(join(root, 'becomes-dir'));
  mkdirSync(join(root, 'becomes-dir'));
  writeFileSync(join(root, 'becomes-dir/inside'), 'y');
  rmSync(join(root, 'refilled/old1'));
  rmSync(join(root, 'refilled/old2'));
  writeFileSync(join(root, 'refilled/new'), 'n');
  linkSync(join(root, 'linked'), join(root, 'linked-too'));
  rmSync(join(root, 'link'));
  symlinkSync('etc/added', join(root, 'link'));
  mknod(join(root, 'etc/null'), S_IFCHR | 0o666, 1, 3);
  run('setcap', ['cap_net_raw+ep', join(root, 'bin/ping')]);
}

interface Seen {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  content?: string;
  target?: string;
  rdev?: number;
  xattrs: string[];
  inodeGroup?: string;
}

/** Every path of a tree with what the diff must keep (times in whole seconds, as a tar holds them). */
function snapshotTree(root: string): Record<string, Seen> {
  const out: Record<string, Seen> = {};
  const groups = new Map<number, string>();
  const walk = (abs: string, rel: string) => {
    for (const name of readdirSync(abs).sort()) {
      const path = join(abs, name);
      const r = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(path);
      const seen: Seen = {
        type: st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : st.isFile() ? 'file' : st.isCharacterDevice() ? 'char' : 'other',
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        mtime: st.isSymbolicLink() ? 0 : Math.floor(st.mtimeMs / 1000),
        xattrs: xattrsOf(path).map(([n, v]) => `${n}=${v.toString('hex')}`),
      };
      if (st.isFile()) {
        seen.content = createHash('sha256').update(readFileSync(path)).digest('hex');
        if (st.nlink > 1) {
          if (!groups.has(st.ino)) groups.set(st.ino, r);
          seen.inodeGroup = groups.get(st.ino);
        }
      }
      if (st.isSymbolicLink()) seen.target = readlinkSync(path);
      if (st.isCharacterDevice()) seen.rdev = st.rdev;
      out[r] = seen;
      if (st.isDirectory()) walk(path, r);
    }
  };
  walk(root, '');
  return out;
}

async function tarBytes(upper: string, changes: Awaited<ReturnType<typeof diffTrees>>): Promise<Buffer> {
  return Buffer.concat([...changeTar(upper, changes)]);
}

describe('diff of a device against its layer', () => {
  it('lists exactly what changed, and its tar applied onto the layer gives the device tree', async () => {
    const base = tmp();
    const lower = join(base, 'layer');
    const upper = join(base, 'device');
    mkdirSync(lower);
    makeLayer(lower);
    // Times in the past, so a change made now moves them.
    for (const p of ['etc', 'refilled', 'bin', 'untouched', '']) utimesSync(join(lower, p), 1_600_000_000, 1_600_000_000);
    run('cp', ['-a', lower, upper]);
    changeDevice(upper);

    const changes = await diffTrees(lower, upper);
    const listed = changes.map((c) => `${c.kind} /${c.path}`);
    expect(listed).toEqual([
      'C /becomes-dir',
      'A /becomes-dir/inside',
      'C /becomes-file',
      'C /bin/ping',
      'C /etc',
      'A /etc/added',
      'C /etc/changed',
      'D /etc/deleted',
      'C /etc/mode',
      'A /etc/null',
      'C /etc/owner',
      'C /etc/xattr',
      'C /link',
      'A /linked-too',
      'C /refilled',
      'A /refilled/new',
      'D /refilled/old1',
      'D /refilled/old2',
    ]);
    expect(changes.find((c) => c.path === 'refilled')?.opaque).toBe(true);

    const tar = await tarBytes(upper, changes);
    // Reproducible: the same trees give the same bytes.
    expect((await tarBytes(upper, await diffTrees(lower, upper))).equals(tar)).toBe(true);

    // Applied onto a copy of the layer, the tar gives the device's tree.
    const applied = join(base, 'applied');
    run('cp', ['-a', lower, applied]);
    const tarPath = join(base, 'diff.tar');
    writeFileSync(tarPath, tar);
    await applyLayer({ kind: 'tar', path: tarPath, diffId: '', sizeBytes: tar.length }, applied, { allowDevices: true, expectDiffId: null });
    const want = snapshotTree(upper);
    const got = snapshotTree(applied);
    expect(Object.keys(got)).toEqual(Object.keys(want));
    for (const path of Object.keys(want)) expect(got[path], path).toEqual(want[path]);
    // The link is kept: both names are one inode.
    expect(lstatSync(join(applied, 'linked')).ino).toBe(lstatSync(join(applied, 'linked-too')).ino);
  });

  it('finds nothing in an untouched copy, and its tar is an empty archive', async () => {
    const base = tmp();
    const lower = join(base, 'layer');
    mkdirSync(lower);
    makeLayer(lower);
    run('cp', ['-a', lower, join(base, 'device')]);
    const changes = await diffTrees(lower, join(base, 'device'));
    expect(changes).toEqual([]);
    expect((await tarBytes(join(base, 'device'), changes)).equals(Buffer.alloc(1024))).toBe(true);
  });

  it('sees a content change that kept the size and the time', async () => {
    const base = tmp();
    const lower = join(base, 'layer');
    mkdirSync(lower);
    writeFileSync(join(lower, 'f'), 'aaaa');
    utimesSync(join(lower, 'f'), 1_600_000_000, 1_600_000_000);
    run('cp', ['-a', lower, join(base, 'device')]);
    writeFileSync(join(base, 'device/f'), 'bbbb');
    utimesSync(join(base, 'device/f'), 1_600_000_000, 1_600_000_000);
    expect((await diffTrees(lower, join(base, 'device'))).map((c) => `${c.kind} ${c.path}`)).toEqual(['C f']);
  });
});
