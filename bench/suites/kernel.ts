// The real kernel, in one VM boot (test/vm: Debian's kernel under qemu, software emulation): the
// same base, chain of layers and writable devices, activated and mounted, converged and torn down
// by `thinlayer apply` / `thinlayer destroy` and by a dmsetup script in the manner of containerd's
// devmapper snapshotter (bench/vm/dmsetup-*.sh); kernel calls per device against the minimum the
// steps need; snapshot creation at chain depth 1 against depth 100; space in the data file.
// The guest side is bench/vm/guest.sh. A VM that cannot boot fails the suite, loudly.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildBundle } from '../../scripts/build.mjs';
import { sumKernelCallLines, type KernelCallTally } from '../../src/kernel/counting.ts';
import { deviceName, manifestYaml } from '../fixtures/manifest.ts';
import { round } from '../stats.ts';
import type { Suite, SuiteContext, SuiteOutput } from '../suite.ts';
import type { Cell } from '../result.ts';

interface Sizes {
  devices: number;
  chain: number;
  depth: number;
  pairs: number;
  spaceDevices: number;
  spaceFileMiB: number;
  /** The trim probe (bench/vm/probe.ts): online discard against periodic trim. */
  trim: { small: number; big: number; bigMiB: number; rounds: number; roundFiles: number; roundKiB: number };
  timeoutMs: number;
}

const FULL: Sizes = {
  devices: 100,
  chain: 10,
  depth: 100,
  pairs: 20,
  spaceDevices: 10,
  spaceFileMiB: 8,
  trim: { small: 2000, big: 4, bigMiB: 8, rounds: 10, roundFiles: 200, roundKiB: 16 },
  timeoutMs: 25 * 60_000,
};
const QUICK: Sizes = {
  devices: 6,
  chain: 3,
  depth: 10,
  pairs: 3,
  spaceDevices: 2,
  spaceFileMiB: 2,
  trim: { small: 100, big: 1, bigMiB: 2, rounds: 3, roundFiles: 20, roundKiB: 16 },
  timeoutMs: 12 * 60_000,
};

interface VmModule {
  bootVm(o: {
    command: string;
    timeoutMs?: number;
    freshDisk?: boolean;
    disk?: string;
    echo?: boolean;
  }): Promise<{ exitCode: number | null; output: string; readyAfterMs: number | null; tookMs: number }>;
  workDir: string;
}

/** The kernel calls the steps cannot do without (port calls, one per step), as the script makes them. */
export function minimumKernelCalls(devices: number, chain: number): { converge: number; teardown: number } {
  // loop ×2, pool create, create_thin, base create, mkfs, base remove, one create_snap per layer,
  // and per device create_snap, create (with its table), mount.
  const converge = 2 + 1 + 1 + 1 + 1 + 1 + chain + 3 * devices;
  // per device unmount, discard, remove, delete; a delete per layer and the base; pool remove; loop detach ×2.
  const teardown = 4 * devices + (chain + 1) + 1 + 2;
  return { converge, teardown };
}

/** `TL-BENCH phase=NAME key=value ...` lines, by phase. */
export function parsePhases(output: string): Map<string, Record<string, string>> {
  const phases = new Map<string, Record<string, string>>();
  for (const line of output.split('\n')) {
    const m = /^TL-BENCH (phase=.*)$/.exec(line.trim());
    if (!m) continue;
    const fields: Record<string, string> = {};
    for (const pair of m[1].split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq > 0) fields[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    phases.set(fields.phase, fields);
  }
  return phases;
}

function callsOf(output: string, phase: 'converge' | 'teardown'): KernelCallTally | null {
  const lines = output.split('\n').filter((l) => l.startsWith(`TL-BENCH-CALLS ${phase} `));
  return sumKernelCallLines(lines.join('\n'));
}

/** Other VMs on this host (the kernel tier, another bench), not this process's own: they take the same cores. */
export function otherVms(): number[] {
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      // The parent pid is the 4th field of stat, after the command in parentheses.
      const ppid = Number(fs.readFileSync(`/proc/${entry}/stat`, 'utf8').split(') ')[1]?.split(' ')[1]);
      if (cmdline.startsWith('qemu-system') && ppid !== process.pid) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Waits (up to `maxMs`) for other VMs to end; returns the ones still running. */
export async function waitForOtherVms(ctx: SuiteContext, maxMs: number): Promise<number[]> {
  const deadline = Date.now() + maxMs;
  let others = otherVms();
  if (others.length > 0)
    ctx.log(`waiting for ${others.length} other VM(s) to finish (pids ${others.join(', ')}): they would share the cores and skew both sides`);
  while (others.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10_000));
    others = otherVms();
  }
  if (others.length > 0) ctx.log(`OTHER VMs STILL RUNNING (pids ${others.join(', ')}): measuring anyway; the figures will say so`);
  return others;
}

/**
 * The guest's disk, formatted here with every inode table and the journal written out: a disk the
 * guest formats itself is initialised lazily by a kernel thread for minutes after boot, competing
 * with whichever side runs first.
 */
export function prepareDisk(disk: string): void {
  fs.rmSync(disk, { force: true });
  fs.writeFileSync(disk, '');
  fs.truncateSync(disk, 4 * 2 ** 30);
  execFileSync('mkfs.ext4', ['-q', '-F', '-E', 'lazy_itable_init=0,lazy_journal_init=0', disk], { stdio: 'pipe' });
}

async function bundle(entry: string, outfile: string): Promise<void> {
  // The CLI's own bundling, into a file of the suite's own: dist/ may be rebuilt by anyone during
  // the run, and the guest must run one fixed copy.
  await buildBundle({ entry, outfile, sourcemap: false });
}

export const kernelSuite: Suite = {
  name: 'kernel',
  title: 'The real kernel (in a VM): thinlayer against a dmsetup script',
  needsVm: true,
  async run(ctx: SuiteContext): Promise<SuiteOutput> {
    const s = ctx.quick ? QUICK : FULL;
    const out: SuiteOutput = { metrics: {}, tables: [], targets: [], notes: [] };
    const vm = (await import(pathToFileURL(path.join(ctx.repoRoot, 'test', 'vm', 'vm.mjs')).href)) as VmModule;
    // The guest sees the checkout (read-only), not the host's /tmp: its inputs go under test/vm/.work.
    const work = path.join(vm.workDir, 'bench');
    fs.rmSync(work, { recursive: true, force: true });
    fs.mkdirSync(work, { recursive: true });
    ctx.log('bundling the CLI and the probe for the guest');
    await bundle(path.join(ctx.repoRoot, 'src', 'cli', 'main.ts'), path.join(work, 'thinlayer.mjs'));
    await bundle(path.join(ctx.repoRoot, 'bench', 'vm', 'probe.ts'), path.join(work, 'probe.mjs'));
    const devices = Array.from({ length: s.devices }, (_, i) => ({
      name: deviceName('d', i, 3),
      layer: `L${s.chain}`,
      state: 'mounted' as const,
      mountpoint: `/run/bench/tl/${deviceName('d', i, 3)}`,
    }));
    const chain = Array.from({ length: s.chain }, (_, i) => `L${i + 1}`);
    fs.writeFileSync(
      path.join(work, 'converge.yaml'),
      manifestYaml({ pool: 'benchvm', dataSize: '8G', metadataSize: '256M', baseSize: '256M', minFree: '1%', chain, devices }),
    );

    const guest = path.join(ctx.repoRoot, 'bench', 'vm', 'guest.sh');
    const command = [
      'bash',
      guest,
      work,
      s.devices,
      s.chain,
      s.depth,
      s.pairs,
      s.spaceDevices,
      s.spaceFileMiB,
      s.trim.small,
      s.trim.big,
      s.trim.bigMiB,
      s.trim.rounds,
      s.trim.roundFiles,
      s.trim.roundKiB,
    ].join(' ');
    ctx.log(
      `booting the VM (software emulation; budget ${s.timeoutMs / 60_000} min): ${s.devices} devices on a chain of ${s.chain}, depth probe to ${s.depth}`,
    );
    let run: Awaited<ReturnType<typeof vm.bootVm>>;
    const disk = path.join(vm.workDir, `bench-disk-${process.pid}.img`);
    const busyBefore = await waitForOtherVms(ctx, ctx.quick ? 0 : 10 * 60_000);
    const load = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const loadBefore = load();
    let busyDuring: number[] = [];
    const watch = setInterval(() => {
      busyDuring = [...new Set([...busyDuring, ...otherVms()])];
    }, 15_000);
    try {
      prepareDisk(disk);
      run = await vm.bootVm({ command, timeoutMs: s.timeoutMs, disk, echo: true });
    } catch (e) {
      return { ...out, failure: `THE VM DID NOT RUN, so nothing was measured on the real kernel: ${(e as Error)?.message ?? e}` };
    } finally {
      clearInterval(watch);
      fs.rmSync(disk, { force: true });
    }
    const contention = [...new Set([...busyBefore, ...busyDuring])];
    out.notes.push(
      contention.length > 0
        ? `**Other VMs ran on this host during the measurement** (qemu pids ${contention.join(', ')}), sharing its ${os.availableParallelism()} cores: every figure of this section is slower than on a quiet host, and the two sides may have been slowed unequally. Load average ${loadBefore} before the boot, ${load()} after.`
        : `No other VM ran on the host during the measurement. Load average ${loadBefore} before the boot, ${load()} after.`,
    );
    const output = run.output;
    const phases = parsePhases(output);
    const problems: string[] = [];
    const phase = (name: string) => {
      const p = phases.get(name);
      if (!p) problems.push(`the guest reported no ${name} phase`);
      else if (p.status !== undefined && p.status !== '0')
        problems.push(
          `${name} exited with status ${p.status}: ${output
            .split('\n')
            .filter((l) => l.startsWith('TL-BENCH-ERR'))
            .slice(0, 5)
            .join(' / ')}`,
        );
      return p ?? {};
    };
    const ready = phase('ready');
    const tlUp = phase('thinlayer-converge');
    const tlDown = phase('thinlayer-teardown');
    const shUp = phase('script-converge');
    const shDown = phase('script-teardown');
    const ms = (p: Record<string, string>) => Number(p.ms);
    // Both sides must have made (and removed) the same set: the pool plus one dm device per writable device.
    const expectDm = s.devices + 1;
    for (const [name, p, dm, mounts] of [
      ['thinlayer converge', tlUp, expectDm, s.devices],
      ['script converge', shUp, expectDm, s.devices],
      ['thinlayer teardown', tlDown, 0, 0],
      ['script teardown', shDown, 0, 0],
    ] as const) {
      if (p.dm !== undefined && (Number(p.dm) !== dm || Number(p.mounts) !== mounts))
        problems.push(`${name} left ${p.dm} dm devices and ${p.mounts} mounts, expected ${dm} and ${mounts}`);
    }

    const rows: Cell[][] = [];
    for (const [label, tl, sh] of [
      [`converge: base, ${s.chain} layers, ${s.devices} devices activated and mounted`, tlUp, shUp],
      ['teardown of the same set, pool and files included', tlDown, shDown],
    ] as const) {
      const ratio = ms(sh) / ms(tl);
      rows.push([label, round(ms(tl) / 1000), round(ms(sh) / 1000), round(ratio)]);
    }
    out.tables.push({
      title: 'thinlayer against the dmsetup script (seconds, one run each)',
      columns: ['', 'thinlayer CLI (s)', 'dmsetup script (s)', 'script ÷ thinlayer'],
      rows,
      note: `thinlayer: \`node bin/thinlayer.js apply -f converge.yaml --yes --backend kernel -q\` and \`destroy --yes\` (the CLI bundle, started by bench/vm/cli.mjs), node start-up included. Script: bench/vm/dmsetup-converge.sh and dmsetup-teardown.sh, ${shUp.processes ?? '?'} and ${shDown.processes ?? '?'} processes. Order in the boot: thinlayer converge, script converge, script teardown, thinlayer teardown. Node, the bundles and the tools were read once before timing.`,
    });
    const upRatio = ms(shUp) / ms(tlUp);
    const downRatio = ms(shDown) / ms(tlDown);
    out.metrics.thinlayer_converge_ms = { value: ms(tlUp), unit: 'ms' };
    out.metrics.script_converge_ms = { value: ms(shUp), unit: 'ms' };
    out.metrics.thinlayer_teardown_ms = { value: ms(tlDown), unit: 'ms' };
    out.metrics.script_teardown_ms = { value: ms(shDown), unit: 'ms' };
    out.targets.push({
      target: 'converge at least 3× faster than the dmsetup script',
      measured: `${round(ms(tlUp) / 1000)} s against ${round(ms(shUp) / 1000)} s: × ${round(upRatio)}`,
      met: upRatio >= 3,
    });
    out.targets.push({
      target: 'teardown at least 3× faster than the dmsetup script',
      measured: `${round(ms(tlDown) / 1000)} s against ${round(ms(shDown) / 1000)} s: × ${round(downRatio)}`,
      met: downRatio >= 3,
    });

    // --- kernel calls ------------------------------------------------------------------------
    const probeLine = output.split('\n').find((l) => l.startsWith('TL-BENCH-PROBE '));
    const probe = probeLine ? (JSON.parse(probeLine.slice('TL-BENCH-PROBE '.length)) as Record<string, any>) : null;
    if (!probe) problems.push('the guest printed no probe result');
    let upCalls = callsOf(output, 'converge');
    let downCalls = callsOf(output, 'teardown');
    let callsFrom = 'the CLI runs timed above (THINLAYER_COUNT_KERNEL_CALLS=1)';
    if (!upCalls && probe?.count && !probe.count.error) {
      upCalls = probe.count.converge as KernelCallTally;
      downCalls = probe.count.teardown as KernelCallTally;
      callsFrom = `a second converge and teardown of the same manifest through the library API with the kernel port wrapped (bench/vm/probe.ts), because the CLI printed no tally: the session does not yet wrap its kernel with countKernelCallsFromEnv (src/kernel/counting.ts). That run took ${round(probe.count.convergeMs / 1000)} s and ${round(probe.count.teardownMs / 1000)} s`;
    } else if (!upCalls) problems.push(`no kernel call counts: ${probe?.count?.error ?? 'neither the CLI nor the probe printed them'}`);
    const min = minimumKernelCalls(s.devices, s.chain);
    if (upCalls && downCalls) {
      out.tables.push({
        title: 'Kernel calls (calls through the kernel port)',
        columns: ['', 'thinlayer', 'per writable device', 'minimum the steps need', 'minimum per device', 'script processes'],
        rows: [
          ['converge', upCalls.total, round(upCalls.total / s.devices), min.converge, round(min.converge / s.devices), Number(shUp.processes ?? NaN) || null],
          [
            'teardown',
            downCalls.total,
            round(downCalls.total / s.devices),
            min.teardown,
            round(min.teardown / s.devices),
            Number(shDown.processes ?? NaN) || null,
          ],
        ],
        note: `Counted from ${callsFrom}. The minimum counts one call per step of the script (a dm create with its table counts once, as the port's create does). A port call is one ioctl or syscall, except create (create, load, resume) and mkfs (a process). Converge: beyond the script's steps, thinlayer sends one set_transaction_id after each metadata message (the fence recovery reads) and observes the kernel at the start and the end of a run; no step looks a device up first. Teardown: thinlayer's destroy needs fewer calls than the script's steps, because it deletes the pool's files whole, thin ids and all, where the script discards and deletes each device's thin id first.`,
      });
      const keys = [...new Set([...Object.keys(upCalls.calls), ...Object.keys(downCalls.calls)])].sort();
      out.tables.push({
        title: 'thinlayer kernel calls by kind',
        columns: ['call', 'converge', 'converge ms', 'teardown', 'teardown ms'],
        rows: keys.map((k) => [k, upCalls!.calls[k] ?? 0, round(upCalls!.ms[k] ?? 0), downCalls!.calls[k] ?? 0, round(downCalls!.ms[k] ?? 0)]),
      });
      out.metrics.kernel_calls_per_device_converge = { value: round(upCalls.total / s.devices), unit: 'calls' };
      out.metrics.kernel_calls_per_device_teardown = { value: round(downCalls.total / s.devices), unit: 'calls' };
    }

    if (upCalls && downCalls && (upRatio < 3 || downRatio < 3)) {
      const sum = (t: KernelCallTally) => Object.values(t.ms).reduce((a, b) => a + b, 0);
      const cliStart = Number(phases.get('cli-start')?.ms ?? NaN);
      const perProcess = (p: Record<string, string>) => round(ms(p) / Number(p.processes));
      const explain = (label: string, tl: Record<string, string>, sh: Record<string, string>, t: KernelCallTally) =>
        `${label}: the script spent ${perProcess(sh)} ms a process over ${sh.processes} processes; thinlayer ${round(ms(tl) / 1000)} s, of which about ${round(cliStart / 1000)} s starting node and the CLI, ${round(sum(t) / 1000)} s inside ${t.total} kernel calls (${round(t.total / s.devices)} a device against the minimum's ${round((label === 'converge' ? min.converge : min.teardown) / s.devices)}), and the rest outside kernel calls: the engine (an intent appended with fdatasync and an outcome appended per step, planning, folding) and whatever else held the guest`;
      out.notes.push(
        `Where the time goes, since the 3× target is missed. ${explain('converge', tlUp, shUp, upCalls)}. ${explain('teardown', tlDown, shDown, downCalls)}. Under emulation a device-mapper ioctl costs tens of milliseconds, so thinlayer's extra calls weigh as much as the processes it saves.${callsFrom.startsWith('the CLI') ? '' : ' (The kernel-call times come from the counted library run, not the timed CLI run.)'}`,
      );
    }

    // --- depth ---------------------------------------------------------------------------------
    const depth = probe?.depth;
    if (depth && !depth.error) {
      const stepRatio = depth.stepMs.deep / depth.stepMs.depth1;
      const messageRatio = depth.messageMs.deep / depth.messageMs.depth1;
      out.tables.push({
        title: `Snapshot creation by the origin's chain depth (median of ${depth.pairs} each, interleaved)`,
        columns: ['', 'depth 1 (ms)', `depth ${depth.chain} (ms)`, `ratio`],
        rows: [
          ['snap.create step (intent, create_snap, set_transaction_id, outcome)', round(depth.stepMs.depth1), round(depth.stepMs.deep), round(stepRatio)],
          ['create_snap message alone', round(depth.messageMs.depth1), round(depth.messageMs.deep), round(messageRatio)],
        ],
        note: `One apply made a chain of ${depth.chain} layers (${round(depth.chainConvergeMs / 1000)} s); a second added the devices (state created), alternating depth 1 and depth ${depth.chain}.`,
      });
      out.metrics.depth_ratio = { value: round(stepRatio), unit: 'ratio' };
      out.targets.push({
        target: `snapshot creation at depth ${depth.chain} within 1.2× of depth 1`,
        measured: `step × ${round(stepRatio)}, create_snap message × ${round(messageRatio)}`,
        met: stepRatio < 1.2,
      });
    } else problems.push(`depth probe: ${depth?.error ?? 'no result'}`);

    // --- space ---------------------------------------------------------------------------------
    const space = probe?.space;
    if (space && !space.error) {
      const grew = space.afterWrite.file - space.before.file;
      const left = space.afterDelete.file - space.before.file;
      out.tables.push({
        title: `Space in the data file (\`stat -c %b\`), ${space.devices} mounted devices`,
        columns: ['moment', 'data file allocated (bytes)', 'pool data used (bytes)'],
        rows: [
          ['devices made, nothing written', space.before.file, space.before.pool],
          [
            `after writing ${space.written} bytes (one ${s.spaceFileMiB} MiB file and 512 files of 4 KiB per device), sync`,
            space.afterWrite.file,
            space.afterWrite.pool,
          ],
          ['after apply deleted the devices (discard, then delete)', space.afterDelete.file, space.afterDelete.pool],
        ],
      });
      out.metrics.kernel_allocated_per_byte_written = { value: round(grew / space.written), unit: 'bytes/byte' };
      out.metrics.kernel_residual_after_delete_bytes = { value: left, unit: 'bytes' };
      const after =
        left > 0
          ? `kept ${left} bytes more than before the writes (${round(left / space.written)} of what was written)`
          : `was ${-left} bytes smaller than before the writes: the discards returned everything written, and the devices' own mount-time writes too`;
      out.notes.push(
        `Space: the data file grew by ${round(grew / space.written)} bytes per byte written (ext4 metadata and journal included) and, once the devices were deleted, ${after}.`,
      );
    } else problems.push(`space probe: ${space?.error ?? 'no result'}`);

    // --- online discard against periodic trim ------------------------------------------------------
    const trim = probe?.trim;
    if (trim && !trim.error) trimFigures(out, trim, problems);
    else problems.push(`trim probe: ${trim?.error ?? 'no result'}`);

    out.notes.push(
      `The guest: Linux ${ready.kernel ?? '?'} under qemu with software emulation (TCG, 2 vCPUs, 2 GiB), the state and pool files on a virtio disk; there each of the script's steps took ${round(ms(shUp) / Number(shUp.processes))} ms (converge) and ${round(ms(shDown) / Number(shDown.processes))} ms (teardown) with its process start, and node with the CLI took ${round(Number(phases.get('cli-start')?.ms ?? NaN) / 1000)} s to start. Whole boot ${round(run.tookMs / 1000)} s.`,
    );
    if (problems.length > 0) return { ...out, failure: problems.join('\n') };
    return out;
  },
};

/** What bench/vm/probe.ts's trim probe returns (bytes and milliseconds). */
interface TrimProbe {
  sizes: { smallFiles: number; bigFiles: number; bigFileMiB: number; rounds: number; roundFiles: number; roundFileKiB: number };
  options: Record<TrimMode, string>;
  firstTrimMs: Record<TrimMode, number>;
  fstrimStartMs: number;
  written: number;
  fillMs: Record<TrimMode, number>;
  empty: { pool: number; file: number; mapped: Record<TrimMode, number> };
  filled: { pool: number; file: number; mapped: Record<TrimMode, number> };
  delete: Record<
    TrimMode,
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
  >;
  churn: {
    written: number;
    ms: Record<TrimMode, number>;
    mappedBefore: Record<TrimMode, number>;
    mappedAfter: Record<TrimMode, number>;
    trim: Record<TrimMode, { ms: number; settledMs: number; returnedPool: number; returnedFile: number; mappedAfterTrim: number }>;
  };
}
type TrimMode = 'discard' | 'fstrim';

/** The table, metrics and note of online discard (`-o discard`, what thinlayer mounts with) against periodic trim. */
export function trimFigures(out: SuiteOutput, t: TrimProbe, problems: string[]): void {
  if (!t.options.discard.split(',').includes('discard') || t.options.fstrim.split(',').includes('discard')) {
    problems.push(`trim probe: the mounts do not differ as intended (discard side "${t.options.discard}", trim side "${t.options.fstrim}")`);
  }
  const mib = (bytes: number) => round(bytes / 2 ** 20);
  const sec = (ms: number) => round(ms / 1000);
  const d = t.delete;
  const c = t.churn;
  const took = (m: TrimMode) => t.filled.mapped[m] - t.empty.mapped[m];
  const held = (m: TrimMode) => c.mappedAfter[m] - c.mappedBefore[m];
  const heldAfterTrim = (m: TrimMode) => c.trim[m].mappedAfterTrim - c.mappedBefore[m];
  const returned = (m: TrimMode) => d[m].returnedPool + d[m].trimReturnedPool;
  const pct = (part: number, whole: number) => `${round((100 * part) / whole)}%`;
  const z = t.sizes;
  out.tables.push({
    title: 'Online discard against periodic fstrim',
    columns: ['', 'online discard (`-o discard`, as thinlayer mounts)', 'periodic trim (no `discard`, then FITRIM)'],
    rows: [
      [
        `write ${z.smallFiles} files of 4 KiB and ${z.bigFiles} of ${z.bigFileMiB} MiB (${mib(t.written)} MiB), syncfs (s)`,
        sec(t.fillMs.discard),
        sec(t.fillMs.fstrim),
      ],
      ["… pool space the files took (MiB, the device's mapped growth)", mib(took('discard')), mib(took('fstrim'))],
      ['delete them: rm and syncfs (s)', sec(d.discard.ms), sec(d.fstrim.ms)],
      ['… returned to the pool by the delete (MiB)', mib(d.discard.returnedPool), mib(d.fstrim.returnedPool)],
      ['… returned to the host by the delete (MiB of the data file)', mib(d.discard.returnedFile), mib(d.fstrim.returnedFile)],
      ['… back in the pool (s after the rm began)', sec(d.discard.settledMs), 'at the next trim'],
      ['trim after the delete (ms, the FITRIM call)', round(d.discard.trimMs), round(d.fstrim.trimMs)],
      ['… returned to the pool by the trim (MiB)', mib(d.discard.trimReturnedPool), mib(d.fstrim.trimReturnedPool)],
      ['… returned to the host by the trim (MiB)', mib(d.discard.trimReturnedFile), mib(d.fstrim.trimReturnedFile)],
      ['returned to the pool in all, of what the files took', pct(returned('discard'), took('discard')), pct(returned('fstrim'), took('fstrim'))],
      [
        `churn: ${z.rounds} rounds of ${z.roundFiles} files of ${z.roundFileKiB} KiB (${mib(c.written)} MiB), each round's deleted in two halves a round apart, syncfs every round (s)`,
        sec(c.ms.discard),
        sec(c.ms.fstrim),
      ],
      ['… held in the pool after it, every file deleted (MiB)', mib(held('discard')), mib(held('fstrim'))],
      ['trim after the churn (ms)', round(c.trim.discard.ms), round(c.trim.fstrim.ms)],
      ['… held after that trim (MiB)', mib(heldAfterTrim('discard')), mib(heldAfterTrim('fstrim'))],
    ],
    note: `Two devices of one layer, activated by \`thinlayer apply\` and mounted through thinlayer's own mount (LinuxKernel.mount: \`${t.options.discard}\` and \`${t.options.fstrim}\`), on a loop-backed pool with 64 KiB blocks (bench/vm/probe.ts, \`trim\`). The write and delete phases run one device at a time, so the pool's data used and the data file's allocated bytes (\`stat -c %b*%B\`) move for that device alone; the churn's rounds alternate which device goes first, and what each holds is its thin device's mapped bytes. Each figure is read once it stopped moving: dm-thin completes a discard's unmapping after a metadata commit, so the pool shows it up to a second after syncfs returned. Both were trimmed once after mounting (ext4 trims every free group on the first trim of a mount: ${round(t.firstTrimMs.discard)} and ${round(t.firstTrimMs.fstrim)} ms), so the trims timed here are the periodic ones; the fstrim tool adds its process start, ${round(t.fstrimStartMs)} ms here.`,
  });
  for (const m of ['discard', 'fstrim'] as const) {
    out.metrics[`trim_${m}_delete_ms`] = { value: Math.round(d[m].ms), unit: 'ms' };
    out.metrics[`trim_${m}_returned_pool_bytes`] = { value: returned(m), unit: 'bytes' };
    out.metrics[`trim_${m}_returned_host_bytes`] = { value: d[m].returnedFile + d[m].trimReturnedFile, unit: 'bytes' };
    out.metrics[`trim_${m}_churn_ms`] = { value: Math.round(c.ms[m]), unit: 'ms' };
    out.metrics[`trim_${m}_churn_held_bytes`] = { value: held(m), unit: 'bytes' };
  }
  out.metrics.trim_discard_space_back_ms = { value: Math.round(d.discard.settledMs), unit: 'ms' };
  out.metrics.trim_fstrim_trim_ms = { value: round(d.fstrim.trimMs), unit: 'ms' };
  out.metrics.trim_fstrim_churn_trim_ms = { value: round(c.trim.fstrim.ms), unit: 'ms' };
  const churnRatio = c.ms.discard / c.ms.fstrim;
  out.notes.push(
    `Online discard against periodic trim: deleting the same files returned ${mib(d.discard.returnedPool)} MiB to the pool with online discard, ${sec(d.discard.settledMs)} s after the rm began, and nothing with periodic trim until the trim, which returned ${mib(d.fstrim.trimReturnedPool)} MiB in ${round(d.fstrim.trimMs)} ms. The delete took ${sec(d.discard.ms)} s against ${sec(d.fstrim.ms)} s; the churn ${sec(c.ms.discard)} s against ${sec(c.ms.fstrim)} s (online discard × ${round(churnRatio)}), after which the trim side held ${mib(held('fstrim'))} MiB of deleted files in the pool until its trim, the discard side ${mib(held('discard'))} MiB. thinlayer keeps online discard; the reasons are in [recovery.md](recovery.md#space-reclaim-online-discard-or-periodic-trim).`,
  );
}
