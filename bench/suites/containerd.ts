// containerd on the real kernel (in a VM, one boot): thinlayer's snapshotter against containerd's
// built-in devmapper snapshotter (on a thin pool of its own, made by the guest with dmsetup as
// containerd's documentation tells users to), with overlayfs as a reference. Container roots
// (Prepare, Mounts, mount, umount, Remove), `ctr images import` of a 10-layer image, `ctr run
// --rm … echo`, and SIGKILLs during an import: what each side leaves behind. The guest side is
// bench/vm/containerd.sh; the container-root loop is bench/containerd/roots (Go, built offline
// from Debian's containerd source). A VM that cannot boot fails the suite, loudly.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildBundle } from '../../scripts/build.mjs';
import { median, percentile, round } from '../stats.ts';
import type { Suite, SuiteContext, SuiteOutput } from '../suite.ts';
import type { Cell } from '../result.ts';
import { otherVms, prepareDisk, waitForOtherVms } from './kernel.ts';

/** Every `TL-BENCH phase=NAME key=value ...` line, in order (phases repeat here: one per round). */
export function parsePhaseLines(output: string): Record<string, string>[] {
  const lines: Record<string, string>[] = [];
  for (const line of output.split('\n')) {
    const m = /^TL-BENCH (phase=.*)$/.exec(line.trim());
    if (!m) continue;
    const fields: Record<string, string> = {};
    for (const pair of m[1].split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq > 0) fields[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
    lines.push(fields);
  }
  return lines;
}

interface Sizes {
  roots: number;
  rounds: number;
  kills: number;
  layers: number;
  /** Layers of the images imported while the kills happen (a shorter import, so the kills stay minutes). */
  killLayers: number;
  fillFiles: number;
  timeoutMs: number;
}

const FULL: Sizes = { roots: 50, rounds: 2, kills: 10, layers: 10, killLayers: 3, fillFiles: 32, timeoutMs: 60 * 60_000 };
const QUICK: Sizes = { roots: 4, rounds: 1, kills: 2, layers: 3, killLayers: 3, fillFiles: 4, timeoutMs: 25 * 60_000 };
const SIDES = ['thinlayer', 'devmapper', 'overlayfs'] as const;
type Side = (typeof SIDES)[number];

interface VmModule {
  bootVm(o: { command: string; timeoutMs?: number; disk?: string; echo?: boolean }): Promise<{ exitCode: number | null; output: string; tookMs: number }>;
  workDir: string;
}

function jsonLine<T>(output: string, prefix: string): T | null {
  const line = output.split('\n').find((l) => l.startsWith(`${prefix} `));
  if (!line) return null;
  try {
    return JSON.parse(line.slice(prefix.length + 1)) as T;
  } catch {
    return null;
  }
}

export const containerdSuite: Suite = {
  name: 'containerd',
  title: 'containerd on the real kernel (in a VM): thinlayer snapshotter against the devmapper snapshotter, overlayfs for reference',
  needsVm: true,
  async run(ctx: SuiteContext): Promise<SuiteOutput> {
    const s = ctx.quick ? QUICK : FULL;
    const out: SuiteOutput = { metrics: {}, tables: [], targets: [], notes: [] };
    const vm = (await import(pathToFileURL(path.join(ctx.repoRoot, 'test', 'vm', 'vm.mjs')).href)) as VmModule;
    const { buildGo } = (await import(pathToFileURL(path.join(ctx.repoRoot, 'test', 'containerd', 'build-go.mjs')).href)) as {
      buildGo(o: { dir: string; output: string }): string;
    };
    const { writeOciArchive } = (await import(pathToFileURL(path.join(ctx.repoRoot, 'test', 'containerd', 'oci-image.mjs')).href)) as {
      writeOciArchive(o: { out: string; name: string; layers: number; message: string; scratch: string; salt: string; fillFiles: number }): {
        layers: string[];
      };
    };
    const work = path.join(vm.workDir, 'bench-containerd');
    fs.rmSync(work, { recursive: true, force: true });
    fs.mkdirSync(work, { recursive: true });
    ctx.log('bundling the CLI, building bench-roots (Go, offline) and writing the image archives');
    await buildBundle({ entry: path.join(ctx.repoRoot, 'src', 'cli', 'main.ts'), outfile: path.join(work, 'thinlayer.mjs'), sourcemap: false });
    fs.copyFileSync(buildGo({ dir: path.join(ctx.repoRoot, 'bench', 'containerd', 'roots'), output: 'bench-roots' }), path.join(work, 'bench-roots'));
    fs.chmodSync(path.join(work, 'bench-roots'), 0o755);
    const salt = String(Date.now());
    const image = (file: string, name: string, layers = s.layers) =>
      writeOciArchive({
        out: path.join(work, file),
        name,
        layers,
        message: 'hello',
        scratch: path.join(ctx.scratch, 'image'),
        salt: `${file}-${salt}`,
        fillFiles: s.fillFiles,
      });
    for (const sn of SIDES) for (let r = 0; r < s.rounds; r++) image(`import-${sn}-${r}.tar`, `docker.io/library/bench-${sn}:${r}`);
    for (const sn of ['thinlayer', 'devmapper'])
      for (let k = 0; k <= s.kills; k++) image(`kill-${sn}-${k}.tar`, `docker.io/library/kill-${sn}:${k}`, s.killLayers);

    const command = ['bash', path.join(ctx.repoRoot, 'bench', 'vm', 'containerd.sh'), work, s.roots, s.rounds, s.kills].join(' ');
    ctx.log(
      `booting the VM (software emulation; budget ${s.timeoutMs / 60_000} min): ${s.roots} roots, ${s.rounds} imports and runs, ${s.kills} kills per side`,
    );
    const disk = path.join(vm.workDir, `bench-containerd-${process.pid}.img`);
    const busyBefore = await waitForOtherVms(ctx, ctx.quick ? 0 : 10 * 60_000);
    const load = () => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const loadBefore = load();
    let busyDuring: number[] = [];
    const watch = setInterval(() => {
      busyDuring = [...new Set([...busyDuring, ...otherVms()])];
    }, 15_000);
    let run: Awaited<ReturnType<typeof vm.bootVm>>;
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
        ? `**Other VMs ran on this host during the measurement** (qemu pids ${contention.join(', ')}), sharing its ${os.availableParallelism()} cores: every figure of this section is slower than on a quiet host. Load average ${loadBefore} before the boot, ${load()} after.`
        : `No other VM ran on the host during the measurement. Load average ${loadBefore} before the boot, ${load()} after.`,
    );
    const output = run.output;
    const lines = parsePhaseLines(output);
    const problems: string[] = [];
    const errors = output
      .split('\n')
      .filter((l) => l.startsWith('TL-BENCH-ERR'))
      .slice(0, 8)
      .join(' / ');
    for (const l of lines)
      if (l.status !== undefined && l.status !== '0' && l.phase !== 'kill')
        problems.push(`${l.phase}${l.sn ? ` (${l.sn})` : ''} exited with status ${l.status}${l.step ? ` at ${l.step}` : ''}`);
    if (!lines.some((l) => l.phase === 'done')) problems.push(`the guest did not reach the end (exit ${run.exitCode})`);
    if (problems.length > 0 && errors) problems.push(errors);
    const ready = lines.find((l) => l.phase === 'ready') ?? {};

    // --- container roots -----------------------------------------------------------------------
    const roots = jsonLine<Record<Side, { ms: number[]; steps: Record<string, number> }>>(output, 'TL-BENCH-ROOTS');
    if (roots) {
      const rows: Cell[][] = [];
      for (const sn of SIDES) {
        const r = roots[sn];
        if (!r) continue;
        const per = (step: string) => round((r.steps[step] ?? NaN) / r.ms.length);
        rows.push([sn, round(median(r.ms)), round(percentile(r.ms, 95)), per('prepare'), per('mounts'), per('mount'), per('umount'), per('remove')]);
        out.metrics[`roots_${sn}_median_ms`] = { value: round(median(r.ms)), unit: 'ms' };
        out.metrics[`roots_${sn}_p95_ms`] = { value: round(percentile(r.ms, 95)), unit: 'ms' };
      }
      out.tables.push({
        title: `${s.roots} container roots per snapshotter: Prepare + Mounts + mount + umount + Remove (ms per root)`,
        columns: ['snapshotter', 'median', 'p95', 'Prepare (mean)', 'Mounts (mean)', 'mount (mean)', 'umount (mean)', 'Remove (mean)'],
        rows,
        note: "Each root is a writable snapshot of a committed parent (20 files of 4 KiB), mounted at a directory, checked for a file of the parent, unmounted and removed; one root per snapshotter in turn, the order rotating every round (bench/containerd/roots). thinlayer is reached as containerd reaches it, through containerd's proxy client over the unix socket (a gRPC round trip per call); devmapper and overlayfs are containerd's own snapshotter code linked into the program, called in process as containerd calls them, devmapper on a pool of its own made with dmsetup.",
      });
      const tl = roots.thinlayer;
      const dm = roots.devmapper;
      if (tl && dm) {
        for (const [label, f] of [
          ['median', median],
          ['p95', (x: number[]) => percentile(x, 95)],
        ] as const) {
          const ratio = f(tl.ms) / f(dm.ms);
          out.targets.push({
            target: `container root (Prepare + Mounts + mount + umount + Remove), ${label}: thinlayer at most 0.5× devmapper`,
            measured: `${round(f(tl.ms))} ms against ${round(f(dm.ms))} ms: × ${round(ratio)}`,
            met: ratio <= 0.5,
          });
        }
      } else problems.push('the roots result lacks thinlayer or devmapper');
    } else problems.push(`no container-root result${errors ? `: ${errors}` : ''}`);

    // --- imports and runs ------------------------------------------------------------------------
    const timesOf = (phase: string, sn: Side) => lines.filter((l) => l.phase === phase && l.sn === sn && l.status === '0').map((l) => Number(l.ms));
    const imports = Object.fromEntries(SIDES.map((sn) => [sn, timesOf('import', sn)])) as Record<Side, number[]>;
    const runs = Object.fromEntries(SIDES.map((sn) => [sn, timesOf('run', sn)])) as Record<Side, number[]>;
    for (const l of lines) if (l.phase === 'run' && l.status === '0' && l.out !== 'hello') problems.push(`ctr run on ${l.sn} printed "${l.out}", not hello`);
    const secs = (ms: number[]) => (ms.length ? ms.map((m) => round(m / 1000)).join(', ') : 'none');
    out.tables.push({
      title: 'containerd: `ctr images import` and `ctr run --rm … echo` (seconds)',
      columns: ['snapshotter', `import of ${s.layers} layers: median`, 'each', 'ctr run --rm echo: median', 'each'],
      rows: SIDES.map((sn) => [sn, round(median(imports[sn]) / 1000), secs(imports[sn]), round(median(runs[sn]) / 1000), secs(runs[sn])]),
      note: `One containerd with the three snapshotters (thinlayer as the proxy plugin \`thinlayer\`), its root on the VM's disk. Each import is an OCI archive of ${s.layers} uncompressed layers (busybox-static, then ${s.fillFiles} files of 16 KiB and a small file per layer) with layers of its own, so no import finds its content already stored; ${s.rounds} per snapshotter, the order rotating. \`ctr run --rm --snapshotter NAME IMAGE ID echo hello\`, its output checked.`,
    });
    for (const sn of SIDES) {
      out.metrics[`import_${sn}_ms`] = { value: median(imports[sn]), unit: 'ms' };
      out.metrics[`run_${sn}_ms`] = { value: median(runs[sn]), unit: 'ms' };
    }
    if (imports.thinlayer.length && imports.devmapper.length) {
      const ratio = median(imports.thinlayer) / median(imports.devmapper);
      out.targets.push({
        target: `\`ctr images import\` of a ${s.layers}-layer image: thinlayer at most 0.5× devmapper`,
        measured: `${round(median(imports.thinlayer) / 1000)} s against ${round(median(imports.devmapper) / 1000)} s: × ${round(ratio)}`,
        met: ratio <= 0.5,
      });
    } else problems.push('imports: no successful import on thinlayer or devmapper');
    if (runs.thinlayer.length && runs.devmapper.length) {
      const ratio = median(runs.thinlayer) / median(runs.devmapper);
      out.targets.push({
        target: "`ctr run --rm … echo` wall time: thinlayer at most devmapper's",
        measured: `${round(median(runs.thinlayer) / 1000)} s against ${round(median(runs.devmapper) / 1000)} s: × ${round(ratio)}`,
        met: ratio <= 1,
      });
    } else problems.push('runs: no successful ctr run on thinlayer or devmapper');

    // --- SIGKILLs during an import ------------------------------------------------------------------
    const kills = (sn: string) => lines.filter((l) => l.phase === 'kill' && l.sn === sn);
    const interrupted = (sn: string) => kills(sn).filter((l) => l['import-status'] !== '0').length;
    const doctor = jsonLine<{ orphans?: unknown[]; missing?: unknown[] }>(output, 'TL-BENCH-TLDOCTOR');
    const tlFailed = Number(lines.find((l) => l.phase === 'tl-failed-devices')?.count ?? NaN);
    const audit = jsonLine<{ states: Record<string, number>; ids: number[] | null; faultyIds: number[] | null }>(output, 'TL-BENCH-DMAUDIT');
    const poolLine = output.split('\n').find((l) => l.startsWith('TL-BENCH-DMPOOLIDS'));
    const poolIds = poolLine ? poolLine.slice('TL-BENCH-DMPOOLIDS'.length).trim().split(/\s+/).filter(Boolean).map(Number) : null;
    if (!doctor) problems.push('kills: thinlayer doctor printed no JSON');
    if (!audit) problems.push('kills: no devmapper audit');
    if (!poolIds) problems.push('kills: no thin ids read from the devmapper pool');
    const dmLive = new Set((audit?.ids ?? []).filter((id) => !(audit?.faultyIds ?? []).includes(id)));
    const dmLeaked = poolIds ? poolIds.filter((id) => !dmLive.has(id)) : [];
    const dmFaulty = audit?.states?.Faulty ?? 0;
    out.tables.push({
      title: `${s.kills} SIGKILLs during an import of ${s.killLayers} layers: what was left`,
      columns: ['', 'killed', 'imports interrupted', 'thin ids left in the pool that no live snapshot owns', 'devices faulty'],
      rows: [
        [
          'thinlayer',
          'the snapshotter',
          `${interrupted('thinlayer')} of ${kills('thinlayer').length}`,
          doctor ? (doctor.orphans?.length ?? 0) + (doctor.missing?.length ?? 0) : null,
          Number.isFinite(tlFailed) ? tlFailed : null,
        ],
        ['devmapper', 'containerd', `${interrupted('devmapper')} of ${kills('devmapper').length}`, poolIds ? dmLeaked.length : null, audit ? dmFaulty : null],
      ],
      note: `Each import was killed (SIGKILL) at a point spread over the first 90% of the import's measured median length (k − ½ of ${s.kills} parts), then the snapshotter (thinlayer) or containerd (devmapper) was started again and the next import began. thinlayer: \`thinlayer doctor --json\` (thin ids in the pool the log does not prove, and ids the log owns that are missing) and thin devices in a failed state in \`dmsetup status\`. devmapper: the device states in its pool database (ROOT/POOL.db) and the thin ids in its pool (\`thin_ls\` on a metadata snapshot); a Faulty device keeps its thin id in the pool. containerd's own metadata was not garbage-collected between the kills.`,
    });
    if (doctor) out.metrics.kills_thinlayer_leaked_ids = { value: (doctor.orphans?.length ?? 0) + (doctor.missing?.length ?? 0), unit: 'ids' };
    if (Number.isFinite(tlFailed)) out.metrics.kills_thinlayer_failed_devices = { value: tlFailed, unit: 'devices' };
    if (poolIds) out.metrics.kills_devmapper_leaked_ids = { value: dmLeaked.length, unit: 'ids' };
    if (audit) out.metrics.kills_devmapper_faulty_devices = { value: dmFaulty, unit: 'devices' };
    if (doctor && Number.isFinite(tlFailed)) {
      const leaked = (doctor.orphans?.length ?? 0) + (doctor.missing?.length ?? 0);
      out.targets.push({
        target: `${s.kills} SIGKILLs of the snapshotter during an import: no thin id leaked, no device faulty`,
        measured: `thinlayer ${leaked} leaked, ${tlFailed} failed; devmapper (containerd killed) ${poolIds ? dmLeaked.length : '?'} leaked, ${audit ? dmFaulty : '?'} faulty`,
        met: leaked === 0 && tlFailed === 0,
      });
    }
    out.notes.push(
      `The guest: Linux ${ready.kernel ?? '?'} under qemu with software emulation (TCG, 2 vCPUs, 2 GiB), every pool on loop devices over sparse files on a virtio disk; thinlayer's snapshotter took ${round(Number(ready['snapshotter-start-ms']) / 1000)} s to start. Whole boot ${round(run.tookMs / 1000)} s.`,
    );
    if (problems.length > 0) return { ...out, failure: problems.join('\n') };
    return out;
  },
};
