// The snapshotter on the simulated kernel, without a VM: what each call costs and where its time
// goes, how a read compares with an empty gRPC round trip, and how long a start takes with many
// snapshots recorded. The simulated kernel's calls are cheap file operations, so the figures show
// thinlayer's own part of a call (log, session, gRPC) more than the kernel's; section 6 has the
// real kernel's.
//
// - Calls: one at a time, over the unix socket, as containerd sends them: Prepare of a committed
//   parent, Mounts, Stat, Commit, Remove. Between the reads, the same request to an empty server
//   (the same service definition, handlers that answer at once) in the same process and loop: the
//   floor a read can reach.
// - The split: bench/call-split.ts, measured in the serving process.
// - Start: N snapshots recorded, the snapshotter stopped cleanly, then started again; ready is the
//   socket answering. In this process (with the split of the start) and as the CLI (node start-up
//   included).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { connect } from 'node:net';
import path from 'node:path';
import { credentials, Metadata, Server, ServerCredentials, type ServiceError } from '@grpc/grpc-js';
import { loadSnapshotsService } from '../../src/snapshotter/proto.ts';
import { runSnapshotter } from '../../src/snapshotter/command.ts';
import { silentReporter } from '../../src/messages/message-port.ts';
import { CallSplit, PARTS } from '../call-split.ts';
import { buildBundle } from '../../scripts/build.mjs';
import { median, percentile, round } from '../stats.ts';
import type { Suite, SuiteContext, SuiteOutput } from '../suite.ts';

const MANIFEST = `version: 1
pool:
  name: benchsnap
  data: { file: data.img, size: 64G }
  metadata: { file: metadata.img, size: 1G }
  blockSize: 64K
  baseSize: 1G
  filesystem: ext4
`;

type Unary = (req: object) => Promise<any>;
interface Client {
  call(method: string): Unary;
  close(): void;
}

function client(socket: string): Client {
  const { pkg } = loadSnapshotsService();
  const Ctor = pkg.containerd.services.snapshots.v1.Snapshots;
  const c = new Ctor(`unix://${socket}`, credentials.createInsecure());
  const md = new Metadata();
  md.set('containerd-namespace', 'bench');
  return {
    call: (method) => (req) =>
      new Promise((res, rej) =>
        c[method](req, md, { deadline: Date.now() + 120_000 }, (err: ServiceError | null, out: unknown) => (err ? rej(err) : res(out))),
      ),
    close: () => c.close(),
  };
}

/** A server of the same service whose handlers answer at once: the cost of the round trip alone. */
async function emptyServer(socket: string): Promise<Server> {
  const { service } = loadSnapshotsService();
  const server = new Server();
  const info = { name: 'x', parent: '', kind: 'ACTIVE', labels: {} };
  const answer = (res: object) => (_call: unknown, callback: (e: null, r: object) => void) => callback(null, res);
  server.addService(service, {
    Stat: answer({ info }),
    Mounts: answer({ mounts: [{ type: 'ext4', source: '/dev/x', target: '', options: [] }] }),
  });
  await new Promise<void>((done, fail) => server.bindAsync(`unix:${socket}`, ServerCredentials.createInsecure(), (e) => (e ? fail(e) : done())));
  return server;
}

function answers(socket: string): Promise<boolean> {
  return new Promise((done) => {
    const c = connect(socket);
    c.once('connect', () => (c.destroy(), done(true)));
    c.once('error', () => done(false));
  });
}

/** Polls until the socket accepts a connection (the snapshotter binds it under another name and renames it once listening). */
async function untilAnswering(socket: string, failed: () => unknown, ms = 300_000): Promise<void> {
  const end = Date.now() + ms;
  for (;;) {
    if (failed()) throw failed();
    if (fs.existsSync(socket) && (await answers(socket))) return;
    if (Date.now() > end) throw new Error(`the snapshotter at ${socket} did not answer within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

interface Running {
  stop(): Promise<void>;
}

async function startHere(manifest: string, socket: string, stateDir: string): Promise<Running> {
  const controller = new AbortController();
  let failed: unknown = null;
  const done = runSnapshotter({ manifest, socket, stateDir, backend: 'sim', reporter: silentReporter, signal: controller.signal });
  done.catch((e) => (failed = e ?? new Error('the snapshotter failed')));
  await untilAnswering(socket, () => failed);
  return {
    async stop() {
      controller.abort();
      await done;
    },
  };
}

const CALLS = ['Prepare', 'Mounts', 'Stat', 'Commit', 'Remove'] as const;
type CallName = (typeof CALLS)[number];

export const snapshotterSuite: Suite = {
  name: 'snapshotter',
  title: 'The snapshotter on the simulated kernel: calls, their time split, reads against an empty round trip, start',
  async run(ctx: SuiteContext): Promise<SuiteOutput> {
    const rounds = ctx.quick ? 20 : 300;
    const recorded = ctx.quick ? 100 : 1000;
    const starts = ctx.quick ? 2 : 5;
    const out: SuiteOutput = { metrics: {}, tables: [], targets: [], notes: [] };
    const manifest = path.join(ctx.scratch, 'pool.yaml');
    fs.writeFileSync(manifest, MANIFEST);
    const stateDir = path.join(ctx.scratch, 'state');
    const socket = path.join(ctx.scratch, 'snap.sock');
    const emptySocket = path.join(ctx.scratch, 'empty.sock');
    const split = new CallSplit();

    // --- calls, one at a time, and the split of each ---
    let running = await startHere(manifest, socket, stateDir);
    const empty = await emptyServer(emptySocket);
    const c = client(socket);
    const e = client(emptySocket);
    const samples = Object.fromEntries(CALLS.map((n) => [n, [] as number[]])) as Record<CallName, number[]>;
    const parts = Object.fromEntries(CALLS.map((n) => [n, Object.fromEntries([...PARTS, 'gRPC'].map((p) => [p, 0]))])) as Record<
      CallName,
      Record<string, number>
    >;
    const emptyStat: number[] = [];
    const emptyMounts: number[] = [];
    const time = async (work: () => Promise<unknown>): Promise<number> => {
      const started = performance.now();
      await work();
      return performance.now() - started;
    };
    const measured = async (name: CallName, req: object): Promise<void> => {
      split.reset();
      const ms = await time(() => c.call(name)(req));
      samples[name].push(ms);
      const t = split.totals();
      for (const p of PARTS) parts[name][p] += t[p];
      parts[name].gRPC += Math.max(0, ms - split.serverMs);
    };
    try {
      await c.call('Prepare')({ key: 'layer-active', parent: '' });
      await c.call('Commit')({ name: 'layer', key: 'layer-active' });
      // Warm-up: the first calls load code and fill caches.
      for (let i = 0; i < 5; i++) {
        await c.call('Prepare')({ key: `warm-${i}`, parent: 'layer' });
        await c.call('Mounts')({ key: `warm-${i}` });
        await c.call('Stat')({ key: `warm-${i}` });
        await e.call('Stat')({ key: 'x' });
        await e.call('Mounts')({ key: 'x' });
        await c.call('Remove')({ key: `warm-${i}` });
      }
      split.start();
      for (let i = 0; i < rounds; i++) {
        const key = `root-${i}`;
        await measured('Prepare', { key, parent: 'layer' });
        emptyMounts.push(await time(() => e.call('Mounts')({ key })));
        await measured('Mounts', { key });
        emptyStat.push(await time(() => e.call('Stat')({ key })));
        await measured('Stat', { key });
        await measured('Commit', { name: `${key}-c`, key });
        await measured('Remove', { key: `${key}-c` });
      }
    } finally {
      split.stop();
      c.close();
      e.close();
      empty.forceShutdown();
    }
    ctx.log(`calls: ${rounds} rounds of Prepare, Mounts, Stat, Commit, Remove`);

    const rows = CALLS.map((name) => {
      const n = samples[name].length;
      const mean = samples[name].reduce((a, b) => a + b, 0) / n;
      const share = (p: string) => round(parts[name][p] / n);
      out.metrics[`${name.toLowerCase()}_p50_ms`] = { value: round(median(samples[name])), unit: 'ms' };
      out.metrics[`${name.toLowerCase()}_mean_ms`] = { value: round(mean), unit: 'ms' };
      return [name, n, round(median(samples[name])), round(percentile(samples[name], 95)), round(mean), ...PARTS.map(share), share('gRPC')];
    });
    out.tables.push({
      title: 'Calls one at a time, and where their time goes (mean ms per call)',
      columns: ['call', 'calls', 'p50 (ms)', 'p95 (ms)', 'mean (ms)', ...PARTS, 'gRPC'],
      rows,
      note: `Prepare of a committed parent, then Mounts, Stat, Commit and Remove of it, ${rounds} rounds. The split is measured in the serving process (bench/call-split.ts): each part is the time inside it, the innermost part counting (a kernel call made while a session opens is kernel); gRPC is what the client waited beyond the server's own time.`,
    });

    const emptyStatP50 = median(emptyStat);
    const emptyMountsP50 = median(emptyMounts);
    const mountsP50 = median(samples.Mounts);
    const statP50 = median(samples.Stat);
    out.metrics.empty_roundtrip_p50_ms = { value: round(emptyStatP50), unit: 'ms' };
    out.tables.push({
      title: 'Reads against an empty gRPC round trip (same loop, same client)',
      columns: ['read', 'p50 (ms)', 'empty server, same request, p50 (ms)', 'ratio'],
      rows: [
        ['Mounts', round(mountsP50), round(emptyMountsP50), round(mountsP50 / emptyMountsP50)],
        ['Stat', round(statP50), round(emptyStatP50), round(statP50 / emptyStatP50)],
      ],
      note: 'The empty server is a gRPC server of the same service in the same process as the snapshotter, whose Mounts and Stat answer a fixed message at once.',
    });
    for (const [name, p50, floor] of [
      ['Mounts', mountsP50, emptyMountsP50],
      ['Stat', statP50, emptyStatP50],
    ] as const)
      out.targets.push({
        target: `${name} p50 ≤ 2 × an empty gRPC round trip`,
        measured: `${round(p50)} ms against ${round(floor)} ms (${round(p50 / floor)}×)`,
        met: p50 <= 2 * floor,
      });

    // --- start with N snapshots recorded ---
    const live = client(socket);
    try {
      const batch = 8;
      for (let i = 0; i < recorded; i += batch)
        await Promise.all(Array.from({ length: Math.min(batch, recorded - i) }, (_, j) => live.call('Prepare')({ key: `kept-${i + j}`, parent: 'layer' })));
    } finally {
      live.close();
    }
    await running.stop();
    ctx.log(`start: ${recorded} snapshots recorded`);

    const here: number[] = [];
    const startParts = Object.fromEntries(PARTS.map((p) => [p, 0])) as Record<string, number>;
    split.start();
    try {
      for (let i = 0; i < starts; i++) {
        split.reset();
        const started = performance.now();
        running = await startHere(manifest, socket, stateDir);
        here.push(performance.now() - started);
        const t = split.totals();
        for (const p of PARTS) startParts[p] += t[p];
        // No service call runs during a start: what the wrapped parts did not take is `other`.
        startParts.other += here[i] - PARTS.reduce((sum, p) => sum + t[p], 0);
        await running.stop();
      }
    } finally {
      split.stop();
    }
    // The CLI from a bundle of its own, as dist/thinlayer.mjs would run it (bin/thinlayer.js compiles
    // through tsx instead when a source is newer than dist/, which is not what users start). Under
    // the checkout, so that the bundle finds proto/ above it.
    const work = path.join(ctx.repoRoot, 'test', 'vm', '.work', 'snapshotter-bench');
    fs.rmSync(work, { recursive: true, force: true });
    fs.mkdirSync(work, { recursive: true });
    const cliBundle = path.join(work, 'thinlayer.mjs');
    await buildBundle({ entry: path.join(ctx.repoRoot, 'src', 'cli', 'main.ts'), outfile: cliBundle, sourcemap: false });
    const cli: number[] = [];
    try {
      for (let i = 0; i < starts; i++) {
        const started = performance.now();
        const args = [
          path.join(ctx.repoRoot, 'bench', 'vm', 'cli.mjs'),
          cliBundle,
          'snapshotter',
          '-f',
          manifest,
          '--socket',
          socket,
          '--state-dir',
          stateDir,
          '--backend',
          'sim',
          '-q',
        ];
        const proc = spawn(process.execPath, args, { stdio: 'ignore' });
        let exited: Error | null = null;
        const exit = new Promise<void>((done) =>
          proc.on('exit', (code) => {
            exited = new Error(`the snapshotter exited (${code})`);
            done();
          }),
        );
        await untilAnswering(socket, () => exited);
        cli.push(performance.now() - started);
        proc.kill('SIGTERM');
        await exit;
      }
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
    const startRow = (what: string, s: number[]) => [what, s.length, round(median(s)), round(Math.max(...s))];
    out.tables.push({
      title: `Start with ${recorded} snapshots recorded: until the socket answers`,
      columns: ['how', 'starts', 'p50 (ms)', 'max (ms)'],
      rows: [startRow('runSnapshotter in the process', here), ...(cli.length ? [startRow('`thinlayer snapshotter` (node start-up included)', cli)] : [])],
      note: 'Each start follows a clean stop (projection saved). The pool and its base are already made.',
    });
    out.tables.push({
      title: 'Where a start spends its time (mean ms per start, in the process)',
      columns: [...PARTS],
      rows: [PARTS.map((p) => round(startParts[p] / starts))],
      note: '`other` here is everything not in a wrapped part: loading the manifest, recovery’s own work, binding the socket, the wait for it to answer.',
    });
    out.metrics[`start_p50_ms_with_${recorded}`] = { value: round(median(here)), unit: 'ms' };
    if (cli.length) {
      out.metrics[`cli_start_p50_ms_with_${recorded}`] = { value: round(median(cli)), unit: 'ms' };
      out.targets.push({
        target: `ready ≤ 1.5 s after the process starts, ${recorded} snapshots recorded (simulated kernel)`,
        measured: `${round(median(cli))} ms (p50 of ${cli.length})`,
        met: median(cli) <= 1500,
      });
    }
    return out;
  },
};
