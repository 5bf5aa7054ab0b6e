// A state dir the host will not let thinlayer write (an immutable log, a full filesystem, a
// read-only one) and names no one can read: every command says what happened in a sentence that
// names the file and the fix, exits 1 (2 for bad input), and never prints "internal error" or a
// stack trace. Real failures, made as root: `chattr +i`, a 64 KiB tmpfs filled up, a tmpfs
// remounted read-only.

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { BIN } from './cli-harness.ts';
import { manifestYaml, withDevices, writeManifest, type ManifestDraft } from '../builders/manifest.ts';
import { systemCallError } from '../../src/errors/index.ts';

const MANIFEST: ManifestDraft = {
  pool: { name: 'w', data: { file: 'data.img', size: '64M' }, metadata: { file: 'metadata.img', size: '4M' }, baseSize: '24M' },
  layers: { l1: {} },
  devices: { d1: { layer: 'l1', state: 'activated' } },
};
const EDIT = withDevices(MANIFEST, { d2: { layer: 'l1', state: 'activated' } });

/** Every command, as a user would type it (those that change something first). */
const MUTATING = [['apply', '-f', 'EDIT'], ['up'], ['down'], ['destroy', '--yes'], ['pool', 'grow', '--data', '128M'], ['sim', 'reboot']];
const READING = [['plan', '-f', 'EDIT'], ['status'], ['status', '--detailed-exitcode'], ['doctor'], ['events'], ['gc']];

function run(args: string[], stateDir: string, files: Record<string, string>) {
  const argv = args.map((a) => files[a] ?? a);
  const r = spawnSync(process.execPath, [BIN, ...argv, '--state-dir', stateDir, '--backend', 'sim'], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stderr: r.stderr };
}

function noBug(stderr: string, what: string): void {
  expect(stderr, what).not.toMatch(/internal error/);
  expect(stderr, what).not.toMatch(/^\s+at /m);
}

function setup(): { dir: string; files: Record<string, string> } {
  const dir = mkdtempSync(join(tmpdir(), 'thinlayer-host-errors-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const files = { MANIFEST: join(dir, 'm.yaml'), EDIT: join(dir, 'edit.yaml') };
  writeManifest(files.MANIFEST, MANIFEST);
  writeManifest(files.EDIT, EDIT);
  return { dir, files };
}

/** A small tmpfs at `dir`, unmounted when the test ends. */
function tmpfs(dir: string, options = 'size=64k'): void {
  mkdirSync(dir, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', dir]);
  onTestFinished(() => void spawnSync('umount', ['-l', dir]));
}

describe('a state dir the host will not let thinlayer write', () => {
  it('an immutable event log (chattr +i): every command that writes names the log and lsattr, exit 1', () => {
    const { dir, files } = setup();
    const stateDir = join(dir, 'state');
    expect(run(['apply', '-f', 'MANIFEST'], stateDir, files).code).toBe(0);
    const log = join(stateDir, 'events.ndjson');
    execFileSync('chattr', ['+i', log]);
    onTestFinished(() => void spawnSync('chattr', ['-i', log]));
    for (const args of MUTATING) {
      const r = run(args, stateDir, files);
      noBug(r.stderr, args.join(' '));
      if (args[0] === 'sim') continue; // sim reboot writes the simulator's files, not the log
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toContain(log);
      expect(r.stderr).toContain('lsattr');
    }
    for (const args of READING) {
      const r = run(args, stateDir, files);
      noBug(r.stderr, args.join(' '));
      expect([0, 1, 2]).toContain(r.code);
    }
  }, 180_000);

  it('a full filesystem (ENOSPC): a sentence naming the file and saying to free space, exit 1', () => {
    const { dir, files } = setup();
    const mnt = join(dir, 'small');
    tmpfs(mnt);
    const stateDir = join(mnt, 'state');
    expect(run(['apply', '-f', 'MANIFEST'], stateDir, files).code).toBe(0);
    spawnSync('dd', ['if=/dev/zero', `of=${join(mnt, 'fill')}`, 'bs=4k']);
    for (const args of MUTATING) {
      const r = run(args, stateDir, files);
      noBug(r.stderr, args.join(' '));
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toContain('ENOSPC');
      expect(r.stderr).toContain(stateDir);
      expect(r.stderr).toContain('free some space');
    }
    for (const args of READING) {
      const r = run(args, stateDir, files);
      noBug(r.stderr, args.join(' '));
      expect([0, 1, 2]).toContain(r.code);
    }
  }, 180_000);

  it('a read-only filesystem (EROFS): a sentence naming the file and the fix, exit 1', () => {
    const { dir, files } = setup();
    const mnt = join(dir, 'ro');
    tmpfs(mnt, 'size=1m');
    const stateDir = join(mnt, 'state');
    expect(run(['apply', '-f', 'MANIFEST'], stateDir, files).code).toBe(0);
    execFileSync('mount', ['-o', 'remount,ro', mnt]);
    for (const args of MUTATING) {
      const r = run(args, stateDir, files);
      noBug(r.stderr, args.join(' '));
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toContain('EROFS');
      expect(r.stderr).toContain(stateDir);
      expect(r.stderr).toContain('read-only');
    }
    for (const args of READING) {
      const r = run(args, stateDir, files);
      noBug(r.stderr, args.join(' '));
      expect([0, 1, 2]).toContain(r.code);
    }
  }, 180_000);

  it('a quota used up (EDQUOT) is said the same way', () => {
    const e = Object.assign(new Error('EDQUOT: disk quota exceeded, write'), {
      code: 'EDQUOT',
      errno: -122,
      syscall: 'write',
      path: '/var/lib/thinlayer/events.ndjson',
    });
    const said = systemCallError(e)!;
    expect(said.exitCode).toBe(1);
    expect(said.message).toContain('/var/lib/thinlayer/events.ndjson');
    expect(said.message).toContain('quota');
  });
});

describe('names no one can read', () => {
  it.each([
    ['a right-to-left override', 'd\u202e1', 'U+202E'],
    ['a zero-width space', 'd\u200b1', 'U+200B'],
    ['__proto__', '__proto__', 'JavaScript objects reserve'],
    ['constructor', 'constructor', 'JavaScript objects reserve'],
  ])('%s: apply and plan refuse it with exit 2 and no internal error', (_what, name, says) => {
    const { dir, files } = setup();
    const bad = join(dir, 'bad.yaml');
    // The hostile name goes in by hand: a builder's object would take __proto__ as its prototype.
    writeFileSync(bad, manifestYaml(MANIFEST).replace('d1:', `"${name}":`));
    for (const args of [
      ['apply', '-f', bad],
      ['plan', '-f', bad],
    ]) {
      const r = run(args, join(dir, 'state'), files);
      noBug(r.stderr, args.join(' '));
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(says);
    }
  });
});
