// The program a host installs (scripts/build.mjs buildStandalone, docs/operations.md#installing):
// the directory copied to PREFIX/lib/thinlayer and PREFIX/bin/thinlayer a symlink to its
// thinlayer.mjs, run outside any checkout and with no node_modules anywhere above it. It answers
// --version, applies a manifest whose layer comes from a directory (read through koffi, whose native
// module lies beside the script) and serves the snapshotter (whose .proto files lie beside it too).

import { describe, it, expect, onTestFinished } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { connect, type Socket } from 'node:net';
import { buildStandalone } from '../../scripts/build.mjs';
import { manifestYaml, simPool } from '../builders/manifest.ts';

const REPO = resolve(import.meta.dirname, '../..');
const VERSION = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;

const MANIFEST = (mnt: string) =>
  manifestYaml({
    pool: simPool('host', { data: { file: 'data.img', size: '1G' }, filesystem: 'ext4' }),
    layers: { site: { source: 'site' } },
    devices: { web: { layer: 'site', state: 'mounted', mountpoint: `${mnt}/web` } },
  });

describe('the standalone program', () => {
  it('runs from PREFIX/bin/thinlayer with only Node.js: --version, apply, snapshotter', async () => {
    const prefix = mkdtempSync(join(tmpdir(), 'thinlayer-prefix-'));
    onTestFinished(() => rmSync(prefix, { recursive: true, force: true }));
    await buildStandalone({ outdir: join(prefix, 'lib/thinlayer') });
    mkdirSync(join(prefix, 'bin'));
    const command = join(prefix, 'bin/thinlayer');
    symlinkSync('../lib/thinlayer/thinlayer.mjs', command);
    const work = join(prefix, 'work');
    mkdirSync(join(work, 'site'), { recursive: true });
    mkdirSync(join(work, 'mnt'));
    writeFileSync(join(work, 'site/index.html'), 'hello\n');
    writeFileSync(join(work, 'web.yaml'), MANIFEST(join(work, 'mnt')));
    const run = (args: string[]) => spawnSync(command, args, { cwd: work, encoding: 'utf8', timeout: 60_000 });

    const version = run(['--version']);
    expect(version.stdout.trim()).toBe(VERSION);

    const apply = run(['apply', '-f', 'web.yaml', '--yes', '--backend', 'sim', '--state-dir', join(work, 'state')]);
    expect(apply.stderr).not.toMatch(/Error/);
    expect(apply.stdout).toMatch(/^apply: converged after \d+ steps/m);
    expect(apply.status).toBe(0);

    const socket = join(work, 'snapshotter.sock');
    const snapshotter = spawn(command, ['snapshotter', '-f', 'web.yaml', '--socket', socket, '--backend', 'sim', '--state-dir', join(work, 'state')], {
      cwd: work,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    onTestFinished(() => void snapshotter.kill('SIGKILL'));
    let stderr = '';
    snapshotter.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((done) => snapshotter.once('exit', (code) => done(code)));
    // Ready when its socket answers (it is renamed into place only once the server listens).
    const answers = () =>
      new Promise<boolean>((done) =>
        connect(socket)
          .once('connect', function (this: Socket) {
            this.destroy();
            done(true);
          })
          .once('error', () => done(false)),
      );
    const ready = (async () => {
      while (snapshotter.exitCode === null) {
        if (await answers()) return true;
        await new Promise((r) => setTimeout(r, 100));
      }
      return false;
    })();
    expect(await Promise.race([ready, exited.then(() => `exited: ${stderr}`)])).toBe(true);
    snapshotter.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 120_000);
});
