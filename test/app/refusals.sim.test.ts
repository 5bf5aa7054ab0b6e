// Every refusal, through every entry point that takes a manifest: `thinlayer apply`, `thinlayer plan`,
// watch's first run and the library API. On a state dir with nothing recorded, a refused manifest
// leaves nothing behind (no state dir, no identity, no simulated pool); on one with a pool, it adds
// no event to the log. One road to the desired state (src/app/desired.ts) is what makes them agree.

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { spawnSync } from 'node:child_process';
import * as api from '../../src/api/index.ts';
import { watch } from '../../src/watch/watcher.ts';
import { CollectingReporter } from '../../src/messages/message-port.ts';
import { dmIdentity } from '../../src/domain/names.ts';
import { BIN } from '../e2e/cli-harness.ts';
import { manifestYaml, withDevices, withPool, writeManifest, type ManifestDraft, type PoolDraft } from '../builders/manifest.ts';

const POOL: PoolDraft = { name: 'w', data: { file: 'data.img', size: '64M' }, metadata: { file: 'metadata.img', size: '4M' }, baseSize: '24M' };
/** The pool alone, for the manifests below whose layers and devices are hostile text the builder's types keep out. */
const POOL_TEXT = manifestYaml({ pool: POOL });

function root(): string {
  const dir = mkdtempSync(join(tmpdir(), 'thinlayer-refusals-'));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function cli(args: string[], stateDir: string): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args, '--state-dir', stateDir, '--backend', 'sim'], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stderr: r.stderr };
}

/** The error watch's first run ends with, or the error it refuses to start with. */
async function watchOnce(file: string, stateDir: string): Promise<string> {
  const controller = new AbortController();
  const reporter = new CollectingReporter();
  let failed: string | null = null;
  const sink = {
    notify: (m: any) => {
      reporter.notify(m);
      if (m.code === 'watch.run-failed') {
        failed = m.error;
        controller.abort();
      }
      if (m.code === 'watch.run-done') controller.abort();
    },
  };
  try {
    await watch({ file, stateDir, backend: 'sim', intervalMs: 60_000, reporter: sink, signal: controller.signal, settleMs: 10 });
  } catch (e) {
    return (e as Error).message;
  }
  return failed ?? 'the run succeeded';
}

const long = 'a'.repeat(120);
const lookalike = dmIdentity('w', 'device', long).dmName.slice('thinlayer-w-dev-'.length);

/** Manifests refused on their own (with what the refusal names), and what they need on disk. */
const FRESH: Array<{ name: string; make: (dir: string) => string; says: RegExp }> = [
  { name: 'an invalid field', make: () => `${POOL_TEXT}layers: { l1: {} }\ndevices:\n  d1: { layer: l1, state: running }\n`, says: /devices\.d1\.state/ },
  {
    name: 'a directory layer holding a fifo',
    make: (dir) => {
      mkdirSync(join(dir, 'src'));
      execFileSync('mkfifo', [join(dir, 'src', 'pipe')]);
      return manifestYaml({ pool: POOL, layers: { l1: { source: 'src' } }, devices: { d1: { layer: 'l1' } } });
    },
    says: /a fifo is not allowed/,
  },
  {
    name: 'a directory layer holding a device node',
    make: (dir) => {
      mkdirSync(join(dir, 'src'));
      execFileSync('mknod', [join(dir, 'src', 'null'), 'c', '1', '3']);
      return manifestYaml({ pool: POOL, layers: { l1: { source: 'src' } }, devices: { d1: { layer: 'l1' } } });
    },
    says: /a device node is not allowed/,
  },
  {
    name: 'a directory layer holding an escaping symlink',
    make: (dir) => {
      mkdirSync(join(dir, 'src'));
      symlinkSync('../../../../etc/passwd', join(dir, 'src', 'out'));
      return manifestYaml({ pool: POOL, layers: { l1: { source: 'src' } }, devices: { d1: { layer: 'l1' } } });
    },
    says: /entry "out"/,
  },
  {
    name: 'two devices on one dm name',
    make: () => `${POOL_TEXT}layers: { l1: {} }\ndevices:\n  ${long}: { layer: l1 }\n  ${lookalike}: { layer: l1 }\n`,
    says: /shortened device-mapper name/,
  },
  { name: 'an invisible character in a name', make: () => `${POOL_TEXT}layers: { l1: {} }\ndevices:\n  "d\u200b1": { layer: l1 }\n`, says: /U\+200B/ },
  {
    name: 'a layer named __proto__',
    make: () => `${POOL_TEXT}layers: { __proto__: {} }\ndevices:\n  d1: { layer: __proto__ }\n`,
    says: /JavaScript objects reserve/,
  },
];

describe('a refused manifest on a state dir with nothing recorded leaves nothing behind', () => {
  for (const c of FRESH) {
    it(`${c.name}: apply, plan, watch and the library refuse it, and no state dir appears`, async () => {
      const dir = root();
      const file = join(dir, 'm.yaml');
      writeFileSync(file, c.make(dir));
      const stateDir = join(dir, 'state');

      for (const command of ['apply', 'plan']) {
        const r = cli([command, '-f', file, ...(command === 'apply' ? ['--yes'] : [])], stateDir);
        expect(r.code, `${command}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(c.says);
        expect(r.stderr).not.toMatch(/internal error/);
        expect(existsSync(stateDir), command).toBe(false);
      }
      expect(await watchOnce(file, stateDir)).toMatch(c.says);
      expect(existsSync(stateDir), 'watch').toBe(false);
      for (const call of [() => api.apply(file, { stateDir, backend: 'sim', yes: true }), () => api.plan(file, { stateDir, backend: 'sim' })]) {
        await expect(call()).rejects.toMatchObject({ exitCode: 2, message: expect.stringMatching(c.says) });
        expect(existsSync(stateDir)).toBe(false);
      }
    }, 120_000);
  }
});

/** Edits refused against what the state dir records. */
const APPLIED: ManifestDraft = { pool: POOL, layers: { l1: {} }, devices: { d1: { layer: 'l1', state: 'activated', size: '32M' } } };
const CHANGES: Array<{ name: string; text: string; code: string; field: string }> = [
  { name: 'a lowered base size', text: manifestYaml(withPool(APPLIED, { baseSize: '16M' })), code: 'E_BASE_SIZE', field: 'pool.baseSize' },
  { name: 'another block size', text: manifestYaml(withPool(APPLIED, { blockSize: '128K' })), code: 'E_POOL_CHANGE', field: 'pool.blockSize' },
  {
    name: 'a lowered device size',
    text: manifestYaml(withDevices(APPLIED, { d1: { layer: 'l1', state: 'activated', size: '24M' } })),
    code: 'E_DEVICE_SIZE',
    field: 'devices.d1.size',
  },
  {
    name: 'a lowered data size',
    text: manifestYaml(withPool(APPLIED, { data: { file: 'data.img', size: '32M' } })),
    code: 'E_POOL_SIZE',
    field: 'pool.data.size',
  },
];

describe('an edit that cannot be carried out is refused by every entry point, and nothing is recorded', () => {
  for (const c of CHANGES) {
    it(`${c.name} (${c.code})`, async () => {
      const dir = root();
      const file = join(dir, 'm.yaml');
      const stateDir = join(dir, 'state');
      writeManifest(file, APPLIED);
      expect((await api.apply(file, { stateDir, backend: 'sim', yes: true })).outcome).toBe('converged');
      const log = () => readFileSync(join(stateDir, 'events.ndjson'), 'utf8');
      const before = log();
      writeFileSync(file, c.text);

      for (const command of ['apply', 'plan']) {
        const r = cli([command, '-f', file, '--json', ...(command === 'apply' ? ['--yes'] : [])], stateDir);
        expect(r.code, `${command}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toContain(c.field);
        expect(r.stderr).not.toMatch(/internal error/);
      }
      for (const call of [() => api.apply(file, { stateDir, backend: 'sim', yes: true }), () => api.plan(file, { stateDir, backend: 'sim' })]) {
        await expect(call()).rejects.toMatchObject({ exitCode: 2, code: c.code });
      }
      expect(log()).toBe(before);
      // watch's run: refused the same way (the run fails; the recorded desired state stays).
      expect(await watchOnce(file, stateDir)).toContain(c.field);
      const status = await api.status({ stateDir, backend: 'sim' });
      expect(status.devices.map((d) => [d.name, d.sizeBytes])).toEqual([['d1', 32 * 2 ** 20]]);
    }, 120_000);
  }
});
