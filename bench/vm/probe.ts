// The kernel suite's in-guest measurements that need thinlayer's library rather than its CLI
// (bundled by the suite into test/vm/.work/bench/probe.mjs, run by guest.sh on the real kernel):
//
//   depth  snapshot creation with the origin at chain depth 1 against depth CHAIN: one apply makes a
//          chain of CHAIN layers, a second adds PAIRS devices on the first layer and PAIRS on the
//          last, interleaved; each snap.create step and its create_snap message are timed.
//   space  data file blocks (`stat -c %b`) before and after writing into mounted devices, and after
//          an apply deletes those devices.
//   count  (only when the CLI printed no kernel-call tally) the converge and teardown of the
//          suite's manifest again, through the library with every kernel call counted.
//   trim   online discard against periodic trim: two devices of one layer, activated by thinlayer
//          and mounted through its own mount code (LinuxKernel.mount), one with `discard` (as
//          thinlayer mounts) and one without; the same files written into both, deleted (rm and
//          syncfs), then trimmed (FITRIM, as fstrim does); then a churn of writes and deletes, the
//          devices taking turns. Pool data used, the data file's allocated bytes and each device's
//          mapped bytes are read between phases that run one device at a time, so that pool-wide
//          figures are that device's.
//
// Prints progress as `TL-PROBE ...` lines and the result as one `TL-BENCH-PROBE {json}` line.

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { apply, destroy } from '../../src/api/index.ts';
import { LinuxKernel } from '../../src/kernel/linux/index.ts';
import { trim } from '../../src/kernel/linux/filesystem.ts';
import type { KernelPort } from '../../src/kernel/kernel-port.ts';
import { KernelCallCounter, type KernelCallTally } from '../../src/kernel/counting.ts';
import { parsePoolStatus, parseThinStatus } from '../../src/kernel/thin-pool.ts';
import { dmIdentity } from '../../src/domain/names.ts';
import type { Message, Reporter } from '../../src/messages/message-port.ts';
import { deviceName, manifestYaml } from '../fixtures/manifest.ts';
import { median } from '../stats.ts';

interface ProbeArgs {
  dir: string; // on the guest's persistent disk
  mounts: string;
  chain: number;
  pairs: number;
  spaceDevices: number;
  spaceFileMiB: number;
  countManifest: string | null;
  trim: TrimSizes;
}

interface TrimSizes {
  smallFiles: number; // 4 KiB each
  bigFiles: number;
  bigFileMiB: number;
  rounds: number; // churn rounds: write roundFiles files, delete every other one, syncfs
  roundFiles: number;
  roundFileKiB: number;
}

function parseArgs(argv: string[]): ProbeArgs {
  const get = (flag: string) => {
    const i = argv.indexOf(flag);
    return i === -1 ? undefined : argv[i + 1];
  };
  const need = (flag: string) => {
    const v = get(flag);
    if (v === undefined) throw new Error(`probe: ${flag} is required`);
    return v;
  };
  return {
    dir: need('--dir'),
    mounts: need('--mounts'),
    chain: Number(need('--chain')),
    pairs: Number(need('--pairs')),
    spaceDevices: Number(need('--space-devices')),
    spaceFileMiB: Number(need('--space-file-mib')),
    countManifest: get('--count') ?? null,
    trim: {
      smallFiles: Number(need('--trim-small')),
      bigFiles: Number(need('--trim-big')),
      bigFileMiB: Number(need('--trim-big-mib')),
      rounds: Number(need('--trim-rounds')),
      roundFiles: Number(need('--trim-round-files')),
      roundFileKiB: Number(need('--trim-round-kib')),
    },
  };
}

const say = (line: string) => process.stdout.write(`TL-PROBE ${line}\n`);

/** A fresh LinuxKernel for each session (a session closes its kernel), counted by one counter. */
function kernelFor(counter: KernelCallCounter | null): KernelPort {
  const kernel = new LinuxKernel();
  return counter ? counter.wrap(kernel) : kernel;
}

async function depthProbe(a: ProbeArgs) {
  const stateDir = path.join(a.dir, 'depth');
  const chain = Array.from({ length: a.chain }, (_, i) => deviceName('L', i + 1, 3));
  const base = { pool: 'benchdepth', dataSize: '8G', metadataSize: '256M', baseSize: '256M', minFree: '1%', chain };
  const layersOnly = path.join(a.dir, 'depth-layers.yaml');
  const withDevices = path.join(a.dir, 'depth-devices.yaml');
  fs.writeFileSync(layersOnly, manifestYaml({ ...base, devices: [] }));
  const devices = [];
  for (let r = 0; r < a.pairs; r++) {
    devices.push({ name: deviceName('a', r, 3), layer: chain[0], state: 'created' as const });
    devices.push({ name: deviceName('b', r, 3), layer: chain[chain.length - 1], state: 'created' as const });
  }
  fs.writeFileSync(withDevices, manifestYaml({ ...base, devices }));

  let started = performance.now();
  await apply(layersOnly, { stateDir, kernel: kernelFor(null), yes: true });
  const chainMs = performance.now() - started;
  say(`depth: a chain of ${a.chain} layers converged in ${Math.round(chainMs)} ms`);

  // Each device's snap.create step, and the create_snap message inside it, by the origin's depth.
  const depthOf = (target: string) => (target.startsWith('device:a') ? 1 : a.chain);
  const steps: Record<number, number[]> = { 1: [], [a.chain]: [] };
  const messages: Record<number, number[]> = { 1: [], [a.chain]: [] };
  let current: { depth: number; t0: number } | null = null;
  const reporter: Reporter = {
    notify(m: Message) {
      if (m.code === 'step.start' && m.step.op === 'snap.create') current = { depth: depthOf(m.step.target), t0: performance.now() };
      if (m.code === 'step.done' && m.step.op === 'snap.create' && current) {
        steps[current.depth].push(performance.now() - current.t0);
        current = null;
      }
    },
  };
  const inner = new LinuxKernel();
  const timedKernel = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      const method = value.bind(target);
      if (prop !== 'message') return method;
      return async (name: string, text: string) => {
        const t0 = performance.now();
        const reply = await method(name, text);
        if (text.startsWith('create_snap') && current) messages[current.depth].push(performance.now() - t0);
        return reply;
      };
    },
  });
  started = performance.now();
  await apply(withDevices, { stateDir, kernel: timedKernel, yes: true, reporter });
  say(`depth: ${devices.length} snapshots in ${Math.round(performance.now() - started)} ms`);
  // No teardown: the guest's disk is thrown away after the run, and the VM's minutes are counted.
  return {
    chain: a.chain,
    chainConvergeMs: chainMs,
    pairs: a.pairs,
    stepMs: { depth1: median(steps[1]), deep: median(steps[a.chain]), samples: [steps[1].length, steps[a.chain].length] },
    messageMs: { depth1: median(messages[1]), deep: median(messages[a.chain]) },
  };
}

function allocatedBytes(file: string): number {
  const [blocks, unit] = execFileSync('stat', ['-c', '%b %B', file], { encoding: 'utf8' }).trim().split(' ').map(Number);
  return blocks * unit;
}

async function spaceProbe(a: ProbeArgs) {
  const stateDir = path.join(a.dir, 'space');
  const spec = (n: number) => ({
    pool: 'benchspace',
    dataSize: '8G',
    metadataSize: '256M',
    baseSize: '256M',
    chain: ['os'],
    devices: Array.from({ length: n }, (_, i) => ({
      name: deviceName('s', i, 3),
      layer: 'os',
      state: 'mounted' as const,
      mountpoint: path.join(a.mounts, 'space', deviceName('s', i, 3)),
    })),
  });
  const full = path.join(a.dir, 'space-full.yaml');
  const none = path.join(a.dir, 'space-none.yaml');
  fs.writeFileSync(full, manifestYaml(spec(a.spaceDevices)));
  fs.writeFileSync(none, manifestYaml(spec(0)));
  const dataFile = path.join(stateDir, 'data.img');
  const poolUsed = async () => {
    const kernel = new LinuxKernel();
    try {
      const line = (await kernel.status(dmIdentity('benchspace', 'pool').dmName)).find((l) => l.type === 'thin-pool');
      return line ? parsePoolStatus(line.params).dataUsed * 64 * 1024 : NaN;
    } finally {
      await kernel.close();
    }
  };

  await apply(full, { stateDir, kernel: kernelFor(null), yes: true });
  const before = { file: allocatedBytes(dataFile), pool: await poolUsed() };
  const fileBytes = a.spaceFileMiB * 2 ** 20;
  const smallFiles = 512;
  let written = 0;
  for (let i = 0; i < a.spaceDevices; i++) {
    const dir = path.join(a.mounts, 'space', deviceName('s', i, 3));
    fs.writeFileSync(path.join(dir, 'big.bin'), crypto.randomBytes(fileBytes));
    fs.mkdirSync(path.join(dir, 'small'));
    for (let f = 0; f < smallFiles; f++) fs.writeFileSync(path.join(dir, 'small', `${f}.bin`), crypto.randomBytes(4096));
    written += fileBytes + smallFiles * 4096;
  }
  execFileSync('sync');
  const afterWrite = { file: allocatedBytes(dataFile), pool: await poolUsed() };
  say(`space: wrote ${written} bytes into ${a.spaceDevices} devices`);
  await apply(none, { stateDir, kernel: kernelFor(null), yes: true });
  execFileSync('sync');
  const afterDelete = { file: allocatedBytes(dataFile), pool: await poolUsed() };
  return { devices: a.spaceDevices, written, before, afterWrite, afterDelete };
}

const POOL_BLOCK_BYTES = 64 * 1024; // the bench manifests' blockSize

/** FITRIM through thinlayer's Linux backend, what `fstrim` (and so fstrim.timer) does: its time. */
function timedTrim(mountpoint: string): number {
  const t0 = performance.now();
  trim(mountpoint);
  return performance.now() - t0;
}

async function trimProbe(a: ProbeArgs) {
  const t = a.trim;
  const pool = 'benchtrim';
  const stateDir = path.join(a.dir, 'trim');
  const modes = [
    { mode: 'discard', name: 'dsc', discard: true },
    { mode: 'fstrim', name: 'trm', discard: false },
  ] as const;
  type Mode = (typeof modes)[number]['mode'];
  type Figures = Record<Mode, number>;
  const mountpoint = (name: string) => path.join(a.mounts, 'trim', name);
  const manifest = path.join(a.dir, 'trim.yaml');
  fs.writeFileSync(
    manifest,
    manifestYaml({
      pool,
      dataSize: '8G',
      metadataSize: '256M',
      baseSize: '1G',
      chain: ['os'],
      devices: modes.map((m) => ({ name: m.name, layer: 'os', state: 'activated' as const })),
    }),
  );
  await apply(manifest, { stateDir, kernel: kernelFor(null), yes: true });

  const kernel = new LinuxKernel();
  const dataFile = path.join(stateDir, 'data.img');
  const statusOf = async (dmName: string, type: string) => {
    const line = (await kernel.status(dmName)).find((l) => l.type === type);
    if (!line) throw new Error(`trim: ${dmName} has no ${type} status line`);
    return line.params;
  };
  /**
   * Pool data used and the data file's allocated bytes (pool-wide; st_blocks × 512, the figure
   * `stat -c %b*%B` prints, without a process per read), and each device's mapped bytes.
   */
  const read = async () => {
    const mapped: Partial<Figures> = {};
    for (const m of modes) mapped[m.mode] = parseThinStatus(await statusOf(dmIdentity(pool, 'device', m.name).dmName, 'thin')).mappedSectors * 512;
    return {
      pool: parsePoolStatus(await statusOf(dmIdentity(pool, 'pool').dmName, 'thin-pool')).dataUsed * POOL_BLOCK_BYTES,
      file: fs.statSync(dataFile).blocks * 512,
      mapped: mapped as Figures,
    };
  };
  type Reading = Awaited<ReturnType<typeof read>>;
  const same = (x: Reading, y: Reading) => x.pool === y.pool && x.file === y.file && modes.every((m) => x.mapped[m.mode] === y.mapped[m.mode]);
  /**
   * The figures once they stop moving: dm-thin finishes a discard's unmapping in its worker, after
   * a metadata commit (at the latest a second later), which can be after syncfs or FITRIM has
   * returned. Read every 100 ms until nothing changed for 1.5 s; `settledMs` is when (from
   * `since`) the last change was seen.
   */
  const used = async (since = performance.now()) => {
    let last = await read();
    let changedAt = performance.now();
    while (performance.now() - changedAt < 1500 && performance.now() - since < 20_000) {
      await new Promise((r) => setTimeout(r, 100));
      const next = await read();
      if (!same(next, last)) changedAt = performance.now();
      last = next;
    }
    return { ...last, settledMs: Math.max(0, changedAt - since) };
  };
  const mounted: string[] = [];
  try {
    // thinlayer's own mount (noinit_itable, and discard when asked), on the devices it activated.
    const options: Partial<Record<Mode, string>> = {};
    const firstTrimMs: Partial<Figures> = {};
    for (const m of modes) {
      const info = await kernel.info(dmIdentity(pool, 'device', m.name).dmName);
      if (!info) throw new Error(`trim: device ${m.name} is not active after apply`);
      await kernel.mount(info.devPath, mountpoint(m.name), 'ext4', { discard: m.discard });
      mounted.push(mountpoint(m.name));
      options[m.mode] = (await kernel.mounts()).find((e) => e.mountpoint === mountpoint(m.name))?.options.join(',') ?? '?';
      // ext4 trims every free group on the first FITRIM after a mount, and later only the groups
      // that freed blocks since: trim once now, so that the timed trims below are the periodic ones.
      firstTrimMs[m.mode] = timedTrim(mountpoint(m.name));
    }
    // What a periodic trim adds around the ioctl: the fstrim process (median of 3 starts).
    const starts = [0, 1, 2].map(() => {
      const t0 = performance.now();
      execFileSync('fstrim', ['-V']);
      return performance.now() - t0;
    });

    // Fill, one device at a time: a few big files and many small ones, then syncfs.
    const bigBytes = t.bigFileMiB * 2 ** 20;
    const fileBytes = t.roundFileKiB * 1024;
    // One random buffer, sliced: nothing between the files and the pool compresses or dedupes.
    const chunk = crypto.randomBytes(Math.max(bigBytes, 2 ** 20) + Math.max(fileBytes, 4096));
    const slice = (i: number, bytes: number) => chunk.subarray((i * 4096) % (chunk.length - bytes), ((i * 4096) % (chunk.length - bytes)) + bytes);
    const written = t.bigFiles * bigBytes + t.smallFiles * 4096;
    const fillMs: Partial<Figures> = {};
    const empty = await read();
    let t0: number;
    for (const m of modes) {
      const dir = mountpoint(m.name);
      t0 = performance.now();
      for (let i = 0; i < t.bigFiles; i++) fs.writeFileSync(path.join(dir, `big-${i}.bin`), chunk.subarray(0, bigBytes));
      fs.mkdirSync(path.join(dir, 'small'));
      for (let f = 0; f < t.smallFiles; f++) fs.writeFileSync(path.join(dir, 'small', `${f}.bin`), slice(f, 4096));
      await kernel.sync(dir);
      fillMs[m.mode] = performance.now() - t0;
    }
    const filled = await read();
    say(
      `trim: wrote ${written} bytes into each of ${modes.length} devices (${Object.entries(fillMs)
        .map(([k, v]) => `${k} ${Math.round(v!)} ms`)
        .join(', ')})`,
    );

    // Delete, one device at a time: rm and syncfs timed; then a trim, timed. On the discard
    // device the trim finds what online discard left behind.
    const del: Partial<
      Record<
        Mode,
        {
          ms: number;
          settledMs: number;
          returnedPoolAtOnce: number;
          returnedPool: number;
          returnedFile: number;
          mapped: number;
          trimMs: number;
          trimSettledMs: number;
          trimReturnedPool: number;
          trimReturnedFile: number;
          mappedAfterTrim: number;
        }
      >
    > = {};
    for (const m of modes) {
      const dir = mountpoint(m.name);
      const before = await read(); // settled: the last trim's reading was
      t0 = performance.now();
      fs.rmSync(path.join(dir, 'small'), { recursive: true });
      for (let i = 0; i < t.bigFiles; i++) fs.rmSync(path.join(dir, `big-${i}.bin`));
      await kernel.sync(dir);
      const ms = performance.now() - t0;
      const atOnce = await read();
      const after = await used(t0);
      const t1 = performance.now();
      const trimMs = timedTrim(dir);
      const trimmed = await used(t1);
      del[m.mode] = {
        ms,
        settledMs: after.settledMs,
        returnedPoolAtOnce: before.pool - atOnce.pool,
        returnedPool: before.pool - after.pool,
        returnedFile: before.file - after.file,
        mapped: after.mapped[m.mode],
        trimMs,
        trimSettledMs: trimmed.settledMs,
        trimReturnedPool: after.pool - trimmed.pool,
        trimReturnedFile: after.file - trimmed.file,
        mappedAfterTrim: trimmed.mapped[m.mode],
      };
      say(
        `trim: ${m.mode}: delete ${Math.round(ms)} ms returned ${before.pool - after.pool} bytes to the pool; trim ${Math.round(trimMs)} ms returned ${after.pool - trimmed.pool} more`,
      );
    }

    // Churn, writes and deletes interleaved: round r writes a batch of roundFiles files, deletes
    // the odd files of batch r-1 and the even files of batch r-2, and syncs; after the last round
    // the rest is deleted. Every batch is on disk before any of it is deleted, and each batch goes
    // in two halves a round apart, as files of a live system go. The devices take turns, the
    // first of each round alternating.
    const churnMs: Figures = { discard: 0, fstrim: 0 };
    const churnBefore = await read();
    const batch = (m: (typeof modes)[number], r: number) => path.join(mountpoint(m.name), 'churn', String(r));
    const drop = (m: (typeof modes)[number], r: number, parity: number) => {
      if (r < 0 || r >= t.rounds) return;
      for (let f = parity; f < t.roundFiles; f += 2) fs.rmSync(path.join(batch(m, r), `${f}.bin`));
    };
    for (let r = 0; r <= t.rounds + 1; r++) {
      for (const m of r % 2 === 0 ? modes : [...modes].reverse()) {
        t0 = performance.now();
        if (r < t.rounds) {
          fs.mkdirSync(batch(m, r), { recursive: true });
          for (let f = 0; f < t.roundFiles; f++) fs.writeFileSync(path.join(batch(m, r), `${f}.bin`), slice(r * t.roundFiles + f, fileBytes));
        }
        drop(m, r - 1, 1);
        drop(m, r - 2, 0);
        await kernel.sync(mountpoint(m.name));
        churnMs[m.mode] += performance.now() - t0;
      }
    }
    const churned = await used();
    const churnTrim: Partial<Record<Mode, { ms: number; settledMs: number; returnedPool: number; returnedFile: number; mappedAfterTrim: number }>> = {};
    let before = churned;
    for (const m of modes) {
      const t1 = performance.now();
      const ms = timedTrim(mountpoint(m.name));
      const after = await used(t1);
      churnTrim[m.mode] = {
        ms,
        settledMs: after.settledMs,
        returnedPool: before.pool - after.pool,
        returnedFile: before.file - after.file,
        mappedAfterTrim: after.mapped[m.mode],
      };
      before = after;
    }
    say(
      `trim: churn ${Object.entries(churnMs)
        .map(([k, v]) => `${k} ${Math.round(v)} ms`)
        .join(', ')}; trims returned ${Object.entries(churnTrim)
        .map(([k, v]) => `${k} ${v!.returnedPool}`)
        .join(', ')}`,
    );
    return {
      sizes: t,
      options,
      firstTrimMs,
      fstrimStartMs: median(starts),
      written,
      fillMs,
      empty,
      filled,
      delete: del,
      churn: {
        written: t.rounds * t.roundFiles * fileBytes,
        ms: churnMs,
        mappedBefore: churnBefore.mapped,
        mappedAfter: churned.mapped,
        trim: churnTrim,
      },
    };
  } finally {
    for (const mp of mounted.reverse()) await kernel.unmount(mp).catch(() => undefined);
    await kernel.close();
  }
}

async function countProbe(
  a: ProbeArgs,
  manifest: string,
): Promise<{ converge: KernelCallTally; teardown: KernelCallTally; convergeMs: number; teardownMs: number }> {
  const stateDir = path.join(a.dir, 'count');
  const counter = new KernelCallCounter();
  let t0 = performance.now();
  await apply(manifest, { stateDir, kernel: kernelFor(counter), yes: true });
  const convergeMs = performance.now() - t0;
  const converge = counter.tally();
  say(`count: converge made ${converge.total} kernel calls in ${Math.round(convergeMs)} ms`);
  counter.reset();
  t0 = performance.now();
  await destroy({ stateDir, kernel: kernelFor(counter), yes: true });
  const teardownMs = performance.now() - t0;
  const teardown = counter.tally();
  say(`count: teardown made ${teardown.total} kernel calls in ${Math.round(teardownMs)} ms`);
  return { converge, teardown, convergeMs, teardownMs };
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  fs.mkdirSync(a.dir, { recursive: true });
  const result: Record<string, unknown> = {};
  const attempt = async (name: string, work: () => Promise<unknown>) => {
    try {
      result[name] = await work();
    } catch (e) {
      result[name] = { error: (e as Error)?.stack ?? String(e) };
      say(`${name} FAILED: ${(e as Error)?.message ?? e}`);
    }
  };
  if (a.countManifest) await attempt('count', () => countProbe(a, a.countManifest!));
  await attempt('depth', () => depthProbe(a));
  await attempt('space', () => spaceProbe(a));
  await attempt('trim', () => trimProbe(a));
  process.stdout.write(`TL-BENCH-PROBE ${JSON.stringify(result)}\n`);
}

await main();
