// Runs the real CLI (bin/thinlayer.js) as a child process on a private state dir, as a user would.

import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { manifestYaml, simPool, type DeviceDraft, type ManifestDraft } from '../builders/manifest.ts';

export const REPO = resolve(import.meta.dirname, '../..');
export const BIN = join(REPO, 'bin/thinlayer.js');

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface Sandbox {
  root: string;
  stateDir: string;
  mnt: string;
  run(args: string[], env?: Record<string, string>): CliResult;
  json<T = any>(args: string[]): T;
  /** Writes a manifest (a draft, or text as given) in the sandbox and returns its path. */
  writeManifest(name: string, manifest: ManifestDraft | string): string;
  cleanup(): void;
}

export function sandbox(): Sandbox {
  const root = mkdtempSync(join(tmpdir(), 'thinlayer-e2e-'));
  const stateDir = join(root, 'state');
  const mnt = join(root, 'mnt');
  mkdirSync(mnt);
  const run = (args: string[], env: Record<string, string> = {}): CliResult => {
    const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [BIN, ...args, '--state-dir', stateDir, '--backend', 'sim'], {
      encoding: 'utf8',
      env: { ...process.env, ...env, THINLAYER_LOCK_WAIT_MS: '10000' },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
    });
    return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  };
  return {
    root,
    stateDir,
    mnt,
    run,
    json(args) {
      const r = run([...args, '--json']);
      if (r.code !== 0) throw new Error(`thinlayer ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
      return JSON.parse(r.stdout);
    },
    writeManifest(name, manifest) {
      const file = join(root, name);
      writeFileSync(file, typeof manifest === 'string' ? manifest : manifestYaml(manifest));
      return file;
    },
    cleanup() {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** The example manifest with small sizes and mountpoints inside the sandbox (and `extra` devices after its own). */
export function webManifest(mnt: string, extra: Record<string, DeviceDraft> = {}): ManifestDraft {
  return {
    pool: simPool('demo'),
    layers: { fedora: {}, apache: { parent: 'fedora' } },
    devices: {
      web1: { layer: 'apache', state: 'mounted', mountpoint: `${mnt}/web1` },
      web2: { layer: 'apache', state: 'activated' },
      ...extra,
    },
  };
}
