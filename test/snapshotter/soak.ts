// The snapshotter's soak: a bounded run (THINLAYER_SOAK_SECONDS, 60 by default) of containerd's
// calls from several clients at once (Prepare, Commit, View, Remove, Cleanup, List with filters,
// Stat, Usage), with `doctor` and `status` read beside them, an `apply` of an unrelated device,
// and a SIGKILL of the snapshotter every epoch (10 s), followed by a restart. Every snapshot the
// snapshotter acknowledged must be there after each restart, as containerd knew it, and hold the
// file written into it; nothing may be leaked (a thin id the log does not own, a record without
// a device, an intent left open). The figures are printed at the end.

import { expect, onTestFinished } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { box, poolManifest, startChild, BIN, type Client } from './harness.ts';
import { writeManifest } from '../builders/manifest.ts';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { filesAt } from '../../src/kernel/kernel-port.ts';
import * as api from '../../src/api/index.ts';
import { poolThinIds } from '../e2e/pool-thin-ids.ts';

/** Calls acknowledged in each epoch before its SIGKILL (see the epoch loop), and how long to wait for them. */
const MIN_ACKNOWLEDGED_PER_EPOCH = 5;
const STALL_MS = 120_000;

/** About how many snapshots the soak keeps (see oneCall). */
const POPULATION = 80;

export interface SoakOptions {
  backend: 'sim' | 'kernel';
  seconds: number;
  epochMs: number;
  workers: number;
}

/** A small seeded generator (mulberry32), so that a failing run can be replayed with its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Kind = 'ACTIVE' | 'VIEW' | 'COMMITTED';
interface Known {
  kind: Kind;
  parent: string;
  /** The marker file's content: written into an active snapshot, carried by its commit. */
  marker: string | null;
}

interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[], stateDir: string, backend: string): Promise<CliRun> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args, '--state-dir', stateDir, '--backend', backend], {
      env: { ...process.env, THINLAYER_LOCK_WAIT_MS: '30000' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    // 'close', not 'exit': at 'exit' the child's output may still be in the pipes (a slow VM shows it).
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Mounting as containerd's mount would: through the simulated kernel, or mount(8) on the real one. */
interface Mounter {
  mount(source: string, at: string, readOnly: boolean): Promise<void>;
  unmount(at: string): Promise<void>;
  /** Where the mount's files are seen on this host. */
  filesOf(at: string): string;
}

function simMounter(stateDir: string): Mounter {
  const sim = new SimKernel({ dir: join(stateDir, 'sim') });
  // The snapshotter hands containerd a device node of its own; the simulated kernel knows the device by its dm name.
  const dmPath = (source: string) => `/dev/mapper/${source.split('/').pop()}`;
  return {
    mount: (source, at, readOnly) => sim.mount(dmPath(source), at, 'ext4', { readOnly }),
    unmount: (at) => sim.unmount(at),
    filesOf: (at) => filesAt(sim, at),
  };
}

function realMounter(): Mounter {
  const sh = (args: string[]) => {
    const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  };
  return {
    async mount(source, at, readOnly) {
      sh(['mount', '-t', 'ext4', ...(readOnly ? ['-o', 'ro'] : []), source, at]);
    },
    async unmount(at) {
      sh(['umount', at]);
    },
    filesOf: (at) => at,
  };
}

/** Runs the soak and returns its figures; fails (expect) on anything lost, leaked or misreported. */
export async function runSoak(o: SoakOptions): Promise<Record<string, number>> {
  {
    const { backend, seconds: SECONDS, epochMs: EPOCH_MS, workers: WORKERS } = o;
    const seed = Number(process.env.THINLAYER_SOAK_SEED ?? Date.now() % 100_000);
    const random = prng(seed);
    const pick = <T>(xs: T[]): T | undefined => (xs.length ? xs[Math.floor(random() * xs.length)] : undefined);
    const b = box();
    const mnt = mkdtempSync(join(tmpdir(), 'thinlayer-soak-mnt-'));
    onTestFinished(async () => {
      if (backend === 'kernel') await api.destroy({ stateDir: b.stateDir, backend, yes: true }).catch(() => undefined);
      b.cleanup();
      rmSync(mnt, { recursive: true, force: true });
    });
    const withSide = join(b.root, 'with-side.yaml');
    writeManifest(withSide, poolManifest({ layers: { plain: {} }, devices: { side: { layer: 'plain', state: 'activated' } } }));
    const mounter = backend === 'sim' ? simMounter(b.stateDir) : realMounter();

    const known = new Map<string, Known>();
    /** Keys whose last call was cut short by a kill: either outcome is right. */
    const inDoubt = new Set<string>();
    const busy = new Set<string>();
    let serial = 0;
    const figures = {
      calls: 0,
      acknowledged: 0,
      kills: 0,
      checkedAfterRestart: 0,
      lost: 0,
      leaked: 0,
      doctorRuns: 0,
      doctorErrors: 0,
      applies: 0,
      maxApplyWaitMs: 0,
    };
    const problems: string[] = [];

    async function writeMarker(source: string, key: string): Promise<void> {
      const at = join(mnt, `w-${key}`);
      mkdirSync(at, { recursive: true });
      await mounter.mount(source, at, false);
      try {
        writeFileSync(join(mounter.filesOf(at), 'marker'), key);
      } finally {
        await mounter.unmount(at);
      }
    }

    async function readMarker(source: string, key: string, readOnly: boolean): Promise<string | null> {
      const at = join(mnt, `r-${key}-${serial++}`);
      mkdirSync(at, { recursive: true });
      await mounter.mount(source, at, readOnly);
      try {
        return readFileSync(join(mounter.filesOf(at), 'marker'), 'utf8');
      } catch {
        return null;
      } finally {
        await mounter.unmount(at);
      }
    }

    const hasChildren = (name: string) => [...known.values()].some((k) => k.parent === name);

    async function oneCall(c: Client): Promise<void> {
      let r = random();
      // The population stays near POPULATION: past it, a Prepare's turn goes to a Remove, so that the
      // check after each restart (every snapshot mounted and read) costs the same in every epoch.
      if (known.size > POPULATION && r < 0.3) r = 0.55 + (r / 0.3) * 0.15;
      const committed = [...known].filter(([k, v]) => v.kind === 'COMMITTED' && !busy.has(k) && !inDoubt.has(k)).map(([k]) => k);
      const active = [...known].filter(([k, v]) => v.kind === 'ACTIVE' && !busy.has(k) && !inDoubt.has(k)).map(([k]) => k);
      const leaves = [...known].filter(([k]) => !busy.has(k) && !inDoubt.has(k) && !hasChildren(k)).map(([k]) => k);
      figures.calls++;
      if (r < 0.3) {
        const key = `p${serial++}`;
        const parent = random() < 0.4 ? '' : (pick(committed) ?? '');
        busy.add(key);
        if (parent) busy.add(parent);
        inDoubt.add(key);
        try {
          const out = await c.Prepare({ key, parent });
          known.set(key, { kind: 'ACTIVE', parent, marker: parent ? known.get(parent)!.marker : null });
          inDoubt.delete(key);
          figures.acknowledged++;
          await writeMarker(out.mounts[0].source, key);
          known.get(key)!.marker = key;
        } finally {
          busy.delete(key);
          if (parent) busy.delete(parent);
        }
      } else if (r < 0.45) {
        const key = pick(active.filter((k) => known.get(k)!.marker === k));
        if (!key) return;
        const name = `c${serial++}`;
        busy.add(key);
        inDoubt.add(key);
        inDoubt.add(name);
        try {
          await c.Commit({ name, key });
          const k = known.get(key)!;
          known.delete(key);
          known.set(name, { kind: 'COMMITTED', parent: k.parent, marker: k.marker });
          inDoubt.delete(key);
          inDoubt.delete(name);
          figures.acknowledged++;
        } finally {
          busy.delete(key);
        }
      } else if (r < 0.55) {
        const parent = pick(committed);
        if (!parent) return;
        const key = `v${serial++}`;
        busy.add(parent);
        inDoubt.add(key);
        try {
          await c.View({ key, parent });
          known.set(key, { kind: 'VIEW', parent, marker: known.get(parent)!.marker });
          inDoubt.delete(key);
          figures.acknowledged++;
        } finally {
          busy.delete(parent);
        }
      } else if (r < 0.7) {
        const key = pick(leaves);
        if (!key) return;
        busy.add(key);
        inDoubt.add(key);
        try {
          await c.Remove({ key });
          known.delete(key);
          inDoubt.delete(key);
          figures.acknowledged++;
        } finally {
          busy.delete(key);
        }
      } else if (r < 0.78) {
        await c.Cleanup({});
      } else if (r < 0.88) {
        const listed = await c.List({ filters: ['name~=^c[0-9]+$', 'kind==committed'] });
        for (const info of listed) if (!/^c[0-9]+$/.test(info.name)) problems.push(`List's filter let ${info.name} through`);
      } else if (r < 0.94) {
        const key = pick([...known.keys()].filter((k) => !inDoubt.has(k)));
        if (key) await c.Usage({ key });
      } else {
        const key = pick([...known.keys()].filter((k) => !inDoubt.has(k) && !busy.has(k)));
        if (!key) return;
        const st = (await c.Stat({ key })).info;
        if (st.kind !== known.get(key)!.kind && known.has(key)) problems.push(`Stat ${key}: ${st.kind}, containerd was told ${known.get(key)!.kind}`);
      }
    }

    async function worker(c: Client, until: () => boolean): Promise<void> {
      while (!until()) {
        try {
          await oneCall(c);
        } catch (e) {
          if (until()) return; // the kill: the call's outcome is in doubt
          problems.push(`a call failed while the snapshotter ran: ${String(e)}`);
          return;
        }
      }
    }

    /** doctor and status beside the load: one consistent view, no error for work in flight. */
    async function reader(until: () => boolean): Promise<void> {
      while (!until()) {
        const doctor = await cli(['doctor', '--json'], b.stateDir, backend);
        if (until()) return;
        figures.doctorRuns++;
        let report: { findings?: Array<{ code: string; severity: string; message?: string }> } = {};
        try {
          report = JSON.parse(doctor.stdout);
        } catch {
          problems.push(`doctor --json printed no JSON (exit ${doctor.code}): ${doctor.stderr}`);
        }
        const errors = (report.findings ?? []).filter((f) => f.severity === 'error');
        if (errors.length > 0) {
          figures.doctorErrors++;
          problems.push(`doctor beside the load: ${errors.map((f) => `${f.code}: ${f.message ?? ''}`).join('; ')}`);
        }
        const status = await cli(['status', '--json'], b.stateDir, backend);
        if (until()) return;
        if (status.code !== 0 && status.code !== 2) problems.push(`status beside the load exited ${status.code}: ${status.stderr}`);
      }
    }

    async function applier(epoch: number, until: () => boolean): Promise<void> {
      const started = Date.now();
      const r = await cli(['apply', '-f', epoch % 2 === 0 ? withSide : b.manifest, '--yes', '-q'], b.stateDir, backend);
      if (until()) return;
      figures.applies++;
      figures.maxApplyWaitMs = Math.max(figures.maxApplyWaitMs, Date.now() - started);
      if (r.code !== 0) problems.push(`apply of an unrelated device exited ${r.code}: ${r.stderr}`);
    }

    async function checkAfterRestart(c: Client, epoch: number): Promise<void> {
      const listed = new Map((await c.List({})).map((i: { name: string; kind: string; parent: string }) => [i.name, i]));
      // What a kill left in doubt takes the outcome the restarted snapshotter shows.
      for (const key of inDoubt) {
        const info = listed.get(key);
        if (info) known.set(key, { kind: info.kind as Kind, parent: info.parent, marker: known.get(key)?.marker ?? null });
        else known.delete(key);
      }
      // A Commit cut short: its active key is gone exactly when the committed name is there.
      for (const [key, k] of [...known]) if (k.kind === 'ACTIVE' && !listed.has(key) && inDoubt.has(key)) known.delete(key);
      inDoubt.clear();
      for (const [key, k] of known) {
        figures.checkedAfterRestart++;
        const info = listed.get(key);
        if (!info || info.kind !== k.kind || info.parent !== k.parent) {
          figures.lost++;
          problems.push(
            `epoch ${epoch}: ${key} (${k.kind}, parent "${k.parent}") was acknowledged; the snapshotter shows ${info ? `${info.kind}, parent "${info.parent}"` : 'nothing'}`,
          );
          continue;
        }
        if (k.marker === null) continue;
        let marker: string | null;
        try {
          if (k.kind === 'COMMITTED') {
            const view = `check-${serial++}`;
            const out = await c.View({ key: view, parent: key });
            marker = await readMarker(out.mounts[0].source, view, true);
            await c.Remove({ key: view });
          } else {
            marker = await readMarker((await c.Mounts({ key })).mounts[0].source, key, k.kind === 'VIEW');
          }
        } catch (e) {
          figures.lost++;
          problems.push(`epoch ${epoch}: ${key} is listed but cannot be read: ${String(e)}`);
          continue;
        }
        if (marker !== k.marker) {
          figures.lost++;
          problems.push(`epoch ${epoch}: ${key}'s file holds ${JSON.stringify(marker)}, not ${JSON.stringify(k.marker)}`);
        }
      }
      // Anything listed that containerd was never told of, or that it saw removed, is a leak.
      for (const name of listed.keys()) {
        if (!known.has(name)) {
          figures.leaked++;
          problems.push(`epoch ${epoch}: ${name} is listed, but containerd never saw it made or saw it removed`);
        }
      }
    }

    async function checkLog(epoch: number): Promise<void> {
      const s = await api.Session.open({ stateDir: b.stateDir, backend, reporter: { notify() {} }, mutate: false, command: 'check' });
      let thinIds: number[];
      try {
        const things = Object.values(s.state.things);
        thinIds = things.map((t) => t.thinId).sort((x, y) => x - y);
        const deviceless = Object.keys(s.state.snapshots).filter((id) => !s.state.things[id]);
        const recordless = things.filter((t) => t.kind === 'snapshot' && !s.state.snapshots[t.key]).map((t) => t.key);
        const pending = Object.values(s.state.pending).map((p) => `${p.op} ${p.target}`);
        if (deviceless.length) problems.push(`epoch ${epoch}: records without a device: ${deviceless.join(', ')}`);
        if (recordless.length) problems.push(`epoch ${epoch}: devices without a record: ${recordless.join(', ')}`);
        if (pending.length) problems.push(`epoch ${epoch}: intents left open: ${pending.join(', ')}`);
        figures.leaked += recordless.length;
      } finally {
        await s.close();
      }
      if (backend !== 'sim') return; // the real pool's thin ids: doctor's thin.orphan, read at the end
      const inPool = await poolThinIds(b.stateDir);
      const leaked = inPool.filter((id) => !thinIds.includes(id));
      if (leaked.length) {
        figures.leaked += leaked.length;
        problems.push(`epoch ${epoch}: thin ids in the pool the log does not own: ${leaked.join(', ')}`);
      }
    }

    const epochs = Math.max(1, Math.round((SECONDS * 1000) / EPOCH_MS));
    for (let epoch = 0; epoch < epochs; epoch++) {
      const run = await startChild(b, {}, backend);
      if (epoch > 0) {
        await checkAfterRestart(run.client, epoch);
        await checkLog(epoch);
      }
      let killed = false;
      const until = () => killed;
      const load = [...Array.from({ length: WORKERS }, () => worker(run.client, until)), reader(until), applier(epoch, until)];
      // Each epoch lasts EPOCH_MS and, on a slow host (the kernel tier under emulation), until the
      // load has had MIN_ACKNOWLEDGED_PER_EPOCH calls acknowledged, so the kill always falls on work
      // in progress whatever the host's speed; a snapshotter that makes no progress at all fails the
      // test after STALL_MS instead.
      // The same holds for the reader: the epoch waits for one doctor run beside the load, which
      // under emulation takes longer than five calls.
      const acknowledgedBefore = figures.acknowledged;
      const doctorRunsBefore = figures.doctorRuns;
      const epochStart = Date.now();
      const epochDone = () => figures.acknowledged - acknowledgedBefore >= MIN_ACKNOWLEDGED_PER_EPOCH && figures.doctorRuns > doctorRunsBefore;
      await new Promise((r) => setTimeout(r, EPOCH_MS));
      while (!epochDone() && Date.now() - epochStart < STALL_MS) await new Promise((r) => setTimeout(r, 200));
      if (!epochDone())
        problems.push(
          `epoch ${epoch}: after ${STALL_MS / 1000} s, ${figures.acknowledged - acknowledgedBefore} calls acknowledged and ${figures.doctorRuns - doctorRunsBefore} doctor runs`,
        );
      killed = true;
      run.proc.kill('SIGKILL');
      figures.kills++;
      await run.exit;
      run.client.close();
      await Promise.all(load);
    }
    // The last restart: every acknowledged snapshot is there, and nothing leaked.
    const last = await startChild(b, {}, backend);
    try {
      await checkAfterRestart(last.client, epochs);
    } finally {
      await last.stop();
    }
    await checkLog(epochs);
    // With the snapshotter stopped, doctor finds nothing to repair: no orphan thin id, no missing device.
    const final = await cli(['doctor', '--json'], b.stateDir, backend);
    const finalFindings = (JSON.parse(final.stdout).findings ?? []) as Array<{ code: string; severity: string; message?: string }>;
    for (const f of finalFindings.filter((x) => x.severity !== 'info')) problems.push(`doctor after the soak: ${f.code}: ${f.message ?? ''}`);

    console.log(`soak (seed ${seed}): ${JSON.stringify(figures)}`);
    expect(problems, `seed ${seed}`).toEqual([]);
    expect(figures.lost).toBe(0);
    expect(figures.leaked).toBe(0);
    // The soak did real work: calls were acknowledged, snapshots checked after restarts, doctor ran.
    expect(figures.acknowledged).toBeGreaterThanOrEqual(epochs * MIN_ACKNOWLEDGED_PER_EPOCH);
    expect(figures.checkedAfterRestart).toBeGreaterThan(0);
    expect(figures.doctorRuns).toBeGreaterThan(0);
    return figures;
  }
}
