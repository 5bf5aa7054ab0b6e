// doctor beside a busy snapshotter: Prepares (of the base and of a layer), Commits, Removes, Usage of
// committed snapshots and Cleanup run in a loop while doctor runs 50 times. Each doctor reads one
// consistent view (the log, the kernel, the log again): no error, and no gc, down or up proposed for
// work that is merely under way.

import { describe, it, expect, onTestFinished } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { openStateDir } from '../../src/events/state-dir.ts';
import type { KernelPort } from '../../src/kernel/kernel-port.ts';
import { SessionGate } from '../../src/snapshotter/session-gate.ts';
import { SnapshotService } from '../../src/snapshotter/service.ts';
import { stepsOf } from '../../src/snapshotter/snapshot-steps.ts';
import { Run } from '../../src/engine/with-run.ts';
import { ensurePoolAndBase } from '../../src/snapshotter/pool-setup.ts';
import { CrashPoints } from '../../src/engine/crash-points.ts';
import { initialState } from '../../src/lifecycle/projection.ts';
import { silentReporter } from '../../src/messages/message-port.ts';
import { loadedManifest } from '../builders/manifest.ts';
import { doctorCommand } from '../../src/cli/commands/doctor-command.ts';
import type { DoctorReport } from '../../src/doctor/diagnose.ts';
import { statusWithPlan } from '../../src/api/index.ts';
import { poolManifest } from './harness.ts';

/**
 * The one simulated kernel, shared: a doctor session's close must not close it. doctor's view reads
 * slowly (`slow`), as a real pool's thin_ls does, so calls land between its looks.
 */
function shared(sim: SimKernel, slow = false): KernelPort {
  return new Proxy(sim, {
    get(target, prop, receiver) {
      if (prop === 'close') return async () => undefined;
      if (slow && (prop === 'listThinIds' || prop === 'listDevices' || prop === 'status'))
        return async (...args: unknown[]) => {
          await new Promise((r) => setTimeout(r, 3));
          return (target as any)[prop](...args);
        };
      const value = Reflect.get(target, prop, receiver);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  }) as KernelPort;
}

function sink(): Writable & { text: () => string } {
  let text = '';
  const w = new Writable({
    write(chunk, _enc, done) {
      text += chunk;
      done();
    },
  }) as Writable & { text: () => string };
  w.text = () => text;
  return w;
}

describe('doctor beside a busy snapshotter', () => {
  it('runs 50 times during a load and finds no error, and proposes no gc, down or up', async () => {
    const root = mkdtempSync(join(tmpdir(), 'thinlayer-snapdoc-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const stateDir = join(root, 'state');
    const sim = new SimKernel({ dir: join(stateDir, 'sim') });
    onTestFinished(() => sim.close());
    const kernel = shared(sim);
    const gate = new SessionGate(
      { stateDir, kernel, crash: new CrashPoints(null), reporter: silentReporter, lockWaitMs: 30_000, lingerMs: 20 },
      initialState(),
    );
    onTestFinished(() => gate.close());
    const runSteps = stepsOf(new Run('snapshotter'), 'thinlayer-ctr-pool', silentReporter);
    const manifest = loadedManifest(poolManifest(), join(root, 'pool.yaml'));
    await gate.run((s) => ensurePoolAndBase(s, manifest.pool, manifest.file, runSteps));
    const service = new SnapshotService({
      gate,
      kernel,
      runSteps,
      pool: 'ctr',
      filesystem: 'ext4',
      stateDir: await openStateDir(stateDir),
      reporter: silentReporter,
    });
    await service.prepare('', 'layer-src', '', {}, 'active');
    await service.commit('', 'layer', 'layer-src', {});

    let stop = false;
    let calls = 0;
    const worker = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const key = `w${w}-${i}`;
        await service.prepare('', key, i % 2 ? 'layer' : '', {}, 'active');
        if (i % 3 === 0) {
          await service.commit('', `${key}-c`, key, {});
          await service.usage('', `${key}-c`);
          await service.remove('', `${key}-c`);
        } else await service.remove('', key);
        if (i % 4 === 0) await service.cleanup();
        calls += 1;
      }
    };
    const load = Promise.all([0, 1, 2, 3].map(worker));
    const codes = new Map<string, number>();
    const bad: string[] = [];
    try {
      for (let run = 0; run < 50; run++) {
        const out = sink();
        const exit = await doctorCommand({ stateDir, backend: 'sim', json: true, out, err: sink(), kernel: shared(sim, true) });
        const report = JSON.parse(out.text()) as DoctorReport;
        for (const f of report.findings) {
          codes.set(f.code, (codes.get(f.code) ?? 0) + 1);
          if (f.severity === 'error' || (f.repair && /thinlayer (gc|down|up)\b/.test(f.repair)))
            bad.push(`run ${run}: ${f.code} ${f.subject}: ${f.message} [${f.repair}]`);
        }
        if (exit !== 0) bad.push(`run ${run}: exit ${exit}`);
        // status --detailed-exitcode's reading: nothing to change, nothing interrupted, nothing blocked.
        if (run % 5 === 0) {
          const { view, plan } = await statusWithPlan({ stateDir, backend: 'sim', reporter: silentReporter, kernel: shared(sim, true) });
          if (plan.blockers.length > 0 || plan.steps.length > 0 || view.pendingSteps > 0)
            bad.push(
              `status ${run}: ${JSON.stringify({ blockers: plan.blockers, steps: plan.steps.map((x) => `${x.op} ${x.target}`), pending: view.pendingSteps })}`,
            );
        }
      }
    } finally {
      stop = true;
      await load;
    }
    console.log(`doctor beside the snapshotter: ${calls} call rounds, findings seen: ${JSON.stringify(Object.fromEntries(codes))}`);
    expect(calls).toBeGreaterThan(10);
    expect(bad).toEqual([]);
  }, 300_000);

  it('reports a snapshot whose device is gone and a snapshot device without a record as errors, with repairs that are not gc', async () => {
    const root = mkdtempSync(join(tmpdir(), 'thinlayer-snapdoc-'));
    onTestFinished(() => rmSync(root, { recursive: true, force: true }));
    const stateDir = join(root, 'state');
    const sim = new SimKernel({ dir: join(stateDir, 'sim') });
    onTestFinished(() => sim.close());
    const kernel = shared(sim);
    const gate = new SessionGate(
      { stateDir, kernel, crash: new CrashPoints(null), reporter: silentReporter, lockWaitMs: 30_000, lingerMs: 20 },
      initialState(),
    );
    onTestFinished(() => gate.close());
    const runSteps = stepsOf(new Run('snapshotter'), 'thinlayer-ctr-pool', silentReporter);
    const manifest = loadedManifest(poolManifest(), join(root, 'pool.yaml'));
    await gate.run((s) => ensurePoolAndBase(s, manifest.pool, manifest.file, runSteps));
    const service = new SnapshotService({
      gate,
      kernel,
      runSteps,
      pool: 'ctr',
      filesystem: 'ext4',
      stateDir: await openStateDir(stateDir),
      reporter: silentReporter,
    });
    await service.prepare('ns1', 'src', '', {}, 'active');
    await service.commit('ns1', 'layer', 'src', {});
    await service.prepare('', 'orphaned', '', {}, 'active');
    const doctor = async () => {
      const out = sink();
      const exit = await doctorCommand({ stateDir, backend: 'sim', json: true, out, err: sink(), kernel });
      return { exit, report: JSON.parse(out.text()) as DoctorReport };
    };
    await gate.close();
    expect((await doctor()).exit).toBe(0);

    // The committed snapshot's thin id deleted behind the log; the other's record removed, its device left.
    const layer = Object.values(gate.state.snapshots).find((r) => r.key === 'layer')!;
    const layerThin = gate.state.things[layer.id].thinId;
    await sim.message('thinlayer-ctr-pool', `delete ${layerThin}`);
    const orphaned = Object.values(gate.state.snapshots).find((r) => r.key === 'orphaned')!;
    await gate.run((s) => s.append([{ type: 'snapshot.removed', id: orphaned.id }]));
    await gate.close();

    const { exit, report } = await doctor();
    expect(exit).toBe(1);
    const byCode = (code: string) => report.findings.filter((f) => f.code === code);
    expect(byCode('snapshot.device-missing').map((f) => f.subject)).toEqual([layer.id]);
    expect(byCode('snapshot.device-missing')[0].repair).toContain('ctr -n ns1 snapshots --snapshotter thinlayer rm layer');
    expect(byCode('snapshot.record-missing').map((f) => f.subject)).toEqual([orphaned.id]);
    expect(byCode('thin.missing')).toEqual([]);
    for (const f of report.findings) expect(f.repair ?? '', f.code).not.toMatch(/thinlayer (gc|down|up)\b/);
  }, 120_000);
});
