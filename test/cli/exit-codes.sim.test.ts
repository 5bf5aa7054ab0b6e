// Every exit code a command's help lists (src/cli/help.ts EXIT_CODES) is provoked here, through the
// real CLI on the simulated kernel: a code documented without a way to reach it, or reached
// otherwise than documented, fails. A declined prompt is answered on a pseudo-terminal (script(1)).

import { describe, it, expect, onTestFinished } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN } from '../e2e/cli-harness.ts';
import { EXIT_CODES } from '../../src/cli/help.ts';
import * as api from '../../src/api/index.ts';
import { loadManifest } from '../../src/manifest/load.ts';
import { chainLayers } from '../../src/plan/layer-chain.ts';
import { simPool, withoutDevices, writeManifest, type DeviceDraft, type ManifestDraft } from '../builders/manifest.ts';

interface Exit {
  code: number | null;
  out: string;
}

interface Box {
  root: string;
  stateDir: string;
  mnt: string;
  file: string;
  /** The CLI on this box's state dir and the simulated kernel (unless args name a backend). */
  run(args: string[], input?: string): Exit;
  /** The CLI on a pseudo-terminal, `input` typed at it. */
  onTerminal(args: string[], input: string): Exit;
  /** The CLI, sent `signal` once its output matches `when`. */
  signalled(args: string[], when: RegExp, signal: NodeJS.Signals): Promise<Exit>;
}

function manifest(mnt: string, devices = 12): ManifestDraft {
  const named = Array.from({ length: devices }, (_, i): [string, DeviceDraft] => [
    `d${i + 1}`,
    { layer: 'apache', state: 'mounted', mountpoint: `${mnt}/d${i + 1}` },
  ]);
  return { pool: simPool('exits', { baseSize: '128M' }), layers: { fedora: {}, apache: { parent: 'fedora' } }, devices: Object.fromEntries(named) };
}

function box(): Box {
  const root = mkdtempSync(join(tmpdir(), 'thinlayer-exits-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  const stateDir = join(root, 'state');
  const mnt = join(root, 'mnt');
  mkdirSync(mnt);
  const file = writeManifest(join(root, 'm.yaml'), manifest(mnt));
  const argv = (args: string[]) => [BIN, ...args, '--state-dir', stateDir, ...(args.includes('--backend') ? [] : ['--backend', 'sim'])];
  const env = { ...process.env, THINLAYER_LOCK_WAIT_MS: '10000' };
  return {
    root,
    stateDir,
    mnt,
    file,
    run(args, input) {
      const r = spawnSync(process.execPath, argv(args), { encoding: 'utf8', env, input, timeout: 120_000 });
      return { code: r.status, out: r.stdout + r.stderr };
    },
    onTerminal(args, input) {
      const line = [process.execPath, ...argv(args)].map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(' ');
      const r = spawnSync('script', ['-qec', line, '/dev/null'], { encoding: 'utf8', env, input, timeout: 120_000 });
      return { code: r.status, out: r.stdout + r.stderr };
    },
    signalled(args, when, signal) {
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, argv(args), { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let sent = false;
        const check = (chunk: Buffer) => {
          out += chunk;
          if (!sent && when.test(out)) {
            sent = true;
            child.kill(signal);
          }
        };
        child.stdout.on('data', check);
        child.stderr.on('data', check);
        child.on('error', reject);
        child.on('close', (code) => resolve({ code: sent ? code : -1, out }));
      });
    },
  };
}

const converged = (b: Box) => expect(b.run(['apply', '-f', b.file, '--yes', '-q']).code).toBe(0);
/** A state dir whose event log cannot be read: every command that reads it fails (1). */
const broken = (b: Box) => {
  rmSync(join(b.stateDir, 'events.ndjson'), { force: true });
  mkdirSync(join(b.stateDir, 'events.ndjson'), { recursive: true });
};
/** `run` after `setup`, in one expression. */
const after = (setup: () => unknown, run: () => Exit): Exit => {
  setup();
  return run();
};
const badFlag = (b: Box, args: string[]) => b.run([...args, '--frobnicate']);

/** A recorded manifest without layers l2..l6, not converged to: five layers for gc to delete. */
async function layersForGc(b: Box): Promise<void> {
  const chain = Array.from({ length: 6 }, (_, i) => [`l${i + 1}`, { parent: i === 0 ? 'fedora' : `l${i}` }]);
  const file = writeManifest(join(b.root, 'gc.yaml'), {
    pool: simPool('gcexits', { baseSize: '128M' }),
    layers: { fedora: {}, ...Object.fromEntries(chain) },
    devices: { d1: { layer: 'l1', state: 'activated' } },
  });
  expect((await api.apply(file, { stateDir: b.stateDir, backend: 'sim', yes: true })).outcome).toBe('converged');
  const desired = await loadManifest(file);
  const next = { ...desired, layers: desired.layers.filter((l) => !/^l[2-6]$/.test(l.name)) };
  const s = await api.Session.open({ stateDir: b.stateDir, backend: 'sim', reporter: { notify() {} }, mutate: true, command: 'test' });
  await s.append([{ type: 'desired.set', manifest: next, content: chainLayers(next), source: 'apply' }]);
  await s.close();
}

type Provoke = (b: Box) => Promise<Exit[]> | Exit[];

/** Signals: the step at `[N/` is under way when the signal lands. */
const signalling = (command: (b: Box) => string[], step: number, setup: (b: Box) => Promise<void> | void = converged): Record<130 | 143, Provoke> => ({
  130: async (b) => {
    await setup(b);
    return [await b.signalled(command(b), new RegExp(`^\\[${step}/\\d+\\]`, 'm'), 'SIGINT')];
  },
  143: async (b) => {
    await setup(b);
    return [await b.signalled(command(b), new RegExp(`^\\[${step}/\\d+\\]`, 'm'), 'SIGTERM')];
  },
});

/** For each command, each code it documents: runs that must end with that code. */
const PROVOKE: Record<string, Record<number, Provoke>> = {
  apply: {
    0: (b) => [b.run(['apply', '-f', b.file, '--yes'])],
    1: (b) => {
      converged(b);
      const fewer = writeManifest(join(b.root, 'fewer.yaml'), withoutDevices(manifest(b.mnt), 'd12'));
      const declined = b.onTerminal(['apply', '-f', fewer], 'n\n');
      expect(declined.out).toMatch(/cancelled/);
      broken(b);
      return [declined, b.run(['apply', '-f', b.file, '--yes'])];
    },
    2: (b) => {
      const bad = join(b.root, 'bad.yaml');
      writeFileSync(bad, 'pool: {name: x}\ndevices: {d1: {layer: nosuch}}\n');
      converged(b);
      const fewer = writeManifest(join(b.root, 'fewer.yaml'), withoutDevices(manifest(b.mnt), 'd12'));
      return [b.run(['apply', '-f', bad, '--yes']), b.run(['apply', '-f', fewer])];
    },
    ...signalling(
      (b) => ['apply', '-f', b.file, '--yes'],
      6,
      () => undefined,
    ),
  },
  plan: {
    0: (b) => [
      b.run(['plan', '-f', b.file]),
      after(
        () => converged(b),
        () => b.run(['plan', '-f', b.file, '--detailed-exitcode']),
      ),
    ],
    1: (b) => [
      b.run(['plan', '-f', join(b.root, 'missing.yaml'), '--detailed-exitcode']),
      badFlag(b, ['plan', '--detailed-exitcode']),
      after(
        () => broken(b),
        () => b.run(['plan']),
      ),
    ],
    2: (b) => [b.run(['plan', '-f', b.file, '--detailed-exitcode']), b.run(['plan', '-f', join(b.root, 'missing.yaml')])],
  },
  status: {
    0: (b) => [
      b.run(['status']),
      after(
        () => converged(b),
        () => b.run(['status', '--detailed-exitcode']),
      ),
      b.run(['status', 'd1', 'apache', '-o', 'wide']),
    ],
    1: (b) => [
      badFlag(b, ['status', '--detailed-exitcode']),
      after(
        () => broken(b),
        () => b.run(['status']),
      ),
    ],
    2: (b) => {
      converged(b);
      expect(b.run(['sim', 'reboot']).code).toBe(0);
      return [b.run(['status', '--detailed-exitcode']), badFlag(b, ['status']), b.run(['status', 'nosuch']), b.run(['status', '-o', 'yaml'])];
    },
  },
  events: {
    0: (b) => [
      after(
        () => converged(b),
        () => b.run(['events']),
      ),
    ],
    1: (b) => [
      after(
        () => broken(b),
        () => b.run(['events']),
      ),
    ],
    2: (b) => [b.run(['events', '--since', 'yesterday'])],
  },
  diff: {
    0: (b) => [
      after(
        () => converged(b),
        () => b.run(['diff', 'd1']),
      ),
    ],
    1: (b) => [
      after(
        () => broken(b),
        () => b.run(['diff', 'd1']),
      ),
    ],
    2: (b) => [
      after(
        () => converged(b),
        () => b.run(['diff', 'nosuch']),
      ),
    ],
  },
  commit: {
    0: (b) => [
      after(
        () => converged(b),
        () => b.run(['commit', 'd1', 'web-v2']),
      ),
    ],
    1: (b) => [
      after(
        () => broken(b),
        () => b.run(['commit', 'd1', 'web-v2']),
      ),
    ],
    2: (b) => [
      after(
        () => converged(b),
        () => b.run(['commit', 'nosuch', 'web-v2']),
      ),
      b.run(['commit', 'd1', 'apache']),
    ],
  },
  export: {
    0: (b) => [
      after(
        () => converged(b),
        () => b.run(['export', 'apache', '--oci', join(b.root, 'image')]),
      ),
    ],
    1: (b) => [
      after(
        () => broken(b),
        () => b.run(['export', 'apache', '--oci', join(b.root, 'image')]),
      ),
    ],
    2: (b) => {
      converged(b);
      const notLayout = join(b.root, 'not-a-layout');
      mkdirSync(notLayout);
      writeFileSync(join(notLayout, 'junk'), 'x');
      return [b.run(['export', 'nosuch', '--oci', join(b.root, 'image')]), b.run(['export', 'apache', '--oci', notLayout])];
    },
  },
  up: {
    0: (b) => [
      b.run(['up']),
      after(
        () => converged(b),
        () => b.run(['up']),
      ),
    ],
    1: (b) => [
      after(
        () => broken(b),
        () => b.run(['up']),
      ),
    ],
    2: (b) => [badFlag(b, ['up'])],
    ...signalling(
      () => ['up'],
      4,
      (b) => {
        converged(b);
        expect(b.run(['sim', 'reboot']).code).toBe(0);
      },
    ),
  },
  down: {
    0: (b) => [
      after(
        () => converged(b),
        () => b.run(['down']),
      ),
    ],
    1: (b) => [
      after(
        () => broken(b),
        () => b.run(['down']),
      ),
    ],
    2: (b) => [badFlag(b, ['down'])],
    ...signalling(() => ['down'], 3),
  },
  destroy: {
    0: (b) => [
      b.run(['destroy']),
      after(
        () => converged(b),
        () => b.run(['destroy', '--yes']),
      ),
    ],
    1: (b) => {
      converged(b);
      const declined = b.onTerminal(['destroy'], 'n\n');
      expect(declined.out).toMatch(/Go ahead\? \[y\/N\]/);
      expect(declined.out).toMatch(/cancelled/);
      broken(b);
      return [declined, b.run(['destroy', '--yes'])];
    },
    2: (b) => [
      after(
        () => converged(b),
        () => b.run(['destroy']),
      ),
      badFlag(b, ['destroy']),
    ],
    ...signalling(() => ['destroy', '--yes'], 3),
  },
  doctor: {
    0: (b) => [
      after(
        () => converged(b),
        () => b.run(['doctor']),
      ),
    ],
    1: (b) => [
      after(
        () => broken(b),
        () => b.run(['doctor']),
      ),
    ],
    2: (b) => [badFlag(b, ['doctor'])],
  },
  gc: {
    0: (b) => [
      after(
        () => converged(b),
        () => b.run(['gc']),
      ),
      b.run(['gc', '--yes']),
    ],
    1: (b) => [
      after(
        () => broken(b),
        () => b.run(['gc']),
      ),
    ],
    2: (b) => [b.run(['gc', '--thin-id', 'x'])],
    ...signalling(() => ['gc', '--yes'], 2, layersForGc),
  },
  watch: {
    0: async (b) => [await b.signalled(['watch', '-f', b.file, '--interval', '1h'], /mount device d2\b/, 'SIGTERM')],
    1: async (b) => {
      // A second watch on a state dir one already serves.
      const first = spawn(process.execPath, [BIN, 'watch', '-f', b.file, '--interval', '1h', '--state-dir', b.stateDir, '--backend', 'sim'], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const stopped = new Promise((resolve) => first.on('close', resolve));
      onTestFinished(async () => {
        first.kill('SIGTERM');
        await stopped;
      });
      let out = '';
      await new Promise<void>((resolve) => {
        const check = (c: Buffer) => {
          out += c;
          if (/mount device d12\b/.test(out)) resolve();
        };
        first.stdout.on('data', check);
        first.stderr.on('data', check);
      });
      return [b.run(['watch', '-f', b.file, '--interval', '1h'])];
    },
    2: async (b) => {
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      onTestFinished(() => void server.close());
      const port = (server.address() as { port: number }).port;
      return [
        b.run(['watch', '-f', '-']),
        b.run(['watch', '-f', b.file, '--interval', 'often']),
        b.run(['watch', '-f', b.file, '--metrics-port', String(port)]),
      ];
    },
  },
  snapshotter: {
    0: async (b) => {
      const pool = writeManifest(join(b.root, 'pool.yaml'), { pool: simPool('snap', { baseSize: '128M' }) });
      return [await b.signalled(['snapshotter', '-f', pool, '--socket', join(b.root, 's.sock')], /snapshotter: serving pool/, 'SIGTERM')];
    },
    1: (b) => [
      after(
        () => broken(b),
        () => b.run(['snapshotter', '-f', b.file, '--socket', join(b.root, 's.sock')]),
      ),
    ],
    2: (b) => [b.run(['snapshotter', '-f', b.file])],
  },
  'pool grow': {
    0: (b) => [
      b.run(['pool', 'grow', '--data', '3G']),
      after(
        () => converged(b),
        () => b.run(['pool', 'grow', '--data', '3G', '--metadata', '128M']),
      ),
    ],
    1: (b) => [
      after(
        () => broken(b),
        () => b.run(['pool', 'grow', '--data', '3G']),
      ),
    ],
    2: (b) => [b.run(['pool', 'grow', '--data', '12Q']), b.run(['pool', 'grow'])],
  },
  'sim reboot': {
    0: (b) => [b.run(['sim', 'reboot'])],
    2: (b) => [b.run(['sim', 'reboot', '--backend', 'kernel'])],
  },
  help: {
    0: (b) => [b.run(['help', 'apply'])],
    2: (b) => [b.run(['help', 'nosuch'])],
  },
};

describe('exit codes', () => {
  it('every command documents its exit codes, and each has a way to reach it here', () => {
    expect(Object.keys(PROVOKE).sort()).toEqual(Object.keys(EXIT_CODES).sort());
    for (const [command, codes] of Object.entries(EXIT_CODES)) expect(Object.keys(PROVOKE[command]).map(Number), command).toEqual(codes.map(([code]) => code));
  });

  for (const [command, codes] of Object.entries(EXIT_CODES)) {
    for (const [code, meaning] of codes) {
      it(`${command} exits ${code}: ${meaning}`, { timeout: 120_000 }, async () => {
        const b = box();
        const provoke = PROVOKE[command]?.[code];
        if (!provoke) throw new Error(`no way to provoke ${command} ${code}`);
        const runs = await provoke(b);
        expect(runs.length).toBeGreaterThan(0);
        for (const r of runs) expect(r.code, r.out).toBe(code);
      });
    }
  }

  it("shows the codes in each command's help", () => {
    const b = box();
    for (const [command, codes] of Object.entries(EXIT_CODES)) {
      const help = b.run(['help', ...command.split(' ')]);
      expect(help.code).toBe(0);
      expect(help.out).toMatch(/^Exit codes:$/m);
      for (const [code] of codes) expect(help.out, command).toMatch(new RegExp(`^ {2}${code} +\\S`, 'm'));
    }
  });
});
