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
//
// Prints progress as `TL-PROBE ...` lines and the result as one `TL-BENCH-PROBE {json}` line.

import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { apply, destroy } from '../../src/api/index.ts';
import { LinuxKernel } from '../../src/kernel/linux/index.ts';
import type { KernelPort } from '../../src/kernel/port.ts';
import { KernelCallCounter, type KernelCallTally } from '../../src/kernel/counting.ts';
import { parsePoolStatus } from '../../src/kernel/status-lines.ts';
import { dmIdentity } from '../../src/domain/names.ts';
import type { Message, Reporter } from '../../src/messages/port.ts';
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
    devices: Array.from({ length: n }, (_, i) => ({ name: deviceName('s', i, 3), layer: 'os', state: 'mounted' as const, mountpoint: path.join(a.mounts, 'space', deviceName('s', i, 3)) })),
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

async function countProbe(a: ProbeArgs, manifest: string): Promise<{ converge: KernelCallTally; teardown: KernelCallTally; convergeMs: number; teardownMs: number }> {
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
  process.stdout.write(`TL-BENCH-PROBE ${JSON.stringify(result)}\n`);
}

await main();
