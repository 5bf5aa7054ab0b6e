// thinlayer as `npm pack` makes it and `npm install` puts it in another program's node_modules:
// the tarball holds what the program runs and nothing else, and from the installed package the CLI
// (`npx thinlayer`) and the library (docs/api.md's example, run with plain node) work on the
// simulated kernel. The pack runs in a copy of the checkout, because its prepack empties and
// rebuilds dist/, which the other tests run the CLI from. The install takes thinlayer's
// dependencies from npm's cache (`npm ci` filled it), going to the registry only for what is missing.
// Its time is mostly the build and the install (about 25 s of CPU; printed).

import { describe, it, expect, onTestFinished } from 'vitest';
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { manifestYaml, simPool } from '../builders/manifest.ts';

const REPO = resolve(import.meta.dirname, '../..');
const VERSION = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string;

/** What the tarball may hold: the built modules and declarations, containerd's API, the docs. */
const SHIPPED = /^(package\.json|README\.md|LICENSE|bin\/thinlayer\.js|dist\/[^/]+\.mjs|dist\/types\/.+\.d\.ts|proto\/.+\.proto|docs\/[^/]+\.md)$/;
const REQUIRED = [
  'package.json',
  'README.md',
  'LICENSE',
  'bin/thinlayer.js',
  'dist/thinlayer.mjs',
  'dist/api.mjs',
  'dist/types/api/index.d.ts',
  'proto/containerd/services/snapshots/v1/snapshots.proto',
  'proto/containerd/types/mount.proto',
  'docs/api.md',
  'docs/operations.md',
];

/** Left out of the copy: what a fresh clone lacks, and what is big and beside the point. */
const NOT_COPIED = ['.git', 'node_modules', 'dist', 'state', '.scratch', 'bench/results', 'test/vm/.work'];

/** The environment without the npm_* variables of an `npm test` around this test, which would steer the npm it runs. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k)));
  return { ...env, npm_config_update_notifier: 'false', npm_config_fund: 'false', npm_config_audit: 'false', ...extra };
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = cleanEnv()): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return r;
}

function docExample(): string {
  const block = /```ts\n([\s\S]*?)```/.exec(readFileSync(join(REPO, 'docs/api.md'), 'utf8'));
  if (!block) throw new Error('docs/api.md has no ```ts example');
  return block[1];
}

/** A one-device manifest whose layer is a directory (reading it loads koffi). */
function manifest(mnt: string): string {
  return manifestYaml({
    pool: simPool('packed', { data: { file: 'data.img', size: '1G' }, filesystem: 'ext4' }),
    layers: { site: { source: 'site' } },
    devices: { web: { layer: 'site', state: 'mounted', mountpoint: `${mnt}/web` } },
  });
}

describe('the package npm pack makes', () => {
  it('holds the built CLI, library, declarations, proto files and docs only, and installs and runs from another package', async () => {
    const work = mkdtempSync(join(tmpdir(), 'thinlayer-pack-'));
    onTestFinished(() => rmSync(work, { recursive: true, force: true }));
    const checkout = join(work, 'checkout');
    cpSync(REPO, checkout, { recursive: true, filter: (src) => !NOT_COPIED.includes(relative(REPO, src)) });
    symlinkSync(join(REPO, 'node_modules'), join(checkout, 'node_modules'));

    const started = Date.now();
    const pack = run('npm', ['pack', '--json', '--pack-destination', work], checkout);
    expect(pack.stderr).not.toMatch(/npm (error|ERR)/);
    expect(pack.status).toBe(0);
    const packed = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('[\n'))) as { filename: string; files: { path: string }[] }[];
    const files = packed[0].files.map((f) => f.path);
    expect(files.filter((f) => !SHIPPED.test(f))).toEqual([]);
    for (const f of REQUIRED) expect(files).toContain(f);
    const packMs = Date.now() - started;

    // Another program's directory, with thinlayer installed from the tarball.
    const consumer = join(work, 'consumer');
    mkdirSync(consumer);
    writeFileSync(join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
    // From npm's cache alone when it holds every dependency; from the registry for what it lacks.
    const installArgs = ['install', '--no-audit', '--no-fund', join(work, packed[0].filename)];
    let install = run('npm', ['--offline', ...installArgs], consumer);
    if (install.status !== 0 && /ENOTCACHED/.test(install.stderr)) install = run('npm', ['--prefer-offline', ...installArgs], consumer);
    expect(install.stderr).not.toMatch(/npm (error|ERR)/);
    expect(install.status).toBe(0);
    const installMs = Date.now() - started - packMs;
    console.log(`npm pack ${packMs} ms (its prepack builds dist/), npm install of the tarball ${installMs} ms`);

    const npx = (args: string[], env?: NodeJS.ProcessEnv) => run('npx', ['--no', '--', 'thinlayer', ...args], consumer, env);
    const version = npx(['--version']);
    expect(version.stdout.trim()).toBe(VERSION);
    expect(version.status).toBe(0);

    // The CLI from the package: a layer from a directory (read through koffi, the native addon) on a mounted device.
    const mnt = join(consumer, 'mnt');
    mkdirSync(mnt);
    mkdirSync(join(consumer, 'site'));
    writeFileSync(join(consumer, 'site/index.html'), 'hello\n');
    writeFileSync(join(consumer, 'web.yaml'), manifest(mnt));
    const apply = npx(['apply', '-f', 'web.yaml', '--yes', '--backend', 'sim', '--state-dir', join(consumer, 'state')]);
    expect(apply.stderr).not.toMatch(/Error/);
    expect(apply.stdout).toMatch(/^apply: converged after \d+ steps/m);
    expect(apply.status).toBe(0);

    // The library, as docs/api.md shows it.
    writeFileSync(join(consumer, 'example.mjs'), docExample());
    const example = run(process.execPath, ['example.mjs', 'web.yaml'], consumer, cleanEnv({ THINLAYER_STATE_DIR: join(consumer, 'library-state') }));
    expect(example.stderr).not.toMatch(/Error/);
    expect(example.status).toBe(0);
    const lines = example.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^plan: \d+ steps, impact create$/);
    expect(lines.find((l) => l.startsWith('apply:'))).toMatch(/^apply: converged after \d+ steps/);
    expect(lines.find((l) => l.startsWith('device web'))).toMatch(/^device web: mounted \(desired mounted\), \d+ of 268435456 bytes mapped$/);
    expect(lines.at(-1)).toMatch(/^destroy: converged after \d+ steps$/);
  }, 180_000);
});
