// Shared by the watch tests on the simulated kernel: a private root (state dir, mountpoints, the
// manifest in a directory of its own), a second SimKernel on the same simulator directory to change
// things behind the watcher's back (as another process would), and a watcher to start and stop.

import fs from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { onTestFinished } from 'vitest';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { watchCommand } from '../../src/cli/commands/watch-command.ts';
import { CliOutput } from '../../src/cli/output.ts';
import * as api from '../../src/api/index.ts';
import { EventLog } from '../../src/events/log.ts';
import { openStateDir } from '../../src/events/state-dir.ts';
import type { ThinlayerEvent } from '../../src/model/events.ts';
import { tempDir, waitFor } from './helpers.ts';
import { manifestYaml, type DeviceDraft, type ManifestDraft, type PoolDraft } from '../builders/manifest.ts';

export interface Box {
  root: string;
  stateDir: string;
  mnt: string;
  file: string;
  /** The simulator seen from "another process". */
  sim: SimKernel;
  write(devices: Record<string, DeviceDraft>, pool?: Partial<PoolDraft>): void;
  status(): Promise<api.StatusView>;
  events(): Promise<ThinlayerEvent[]>;
}

export const SMALL_POOL: Partial<PoolDraft> = { data: { file: 'data.img', size: '64M' }, metadata: { file: 'metadata.img', size: '4M' } };

/** Pool w (SMALL_POOL unless told) with 16M devices, one layer l1, and these devices. */
export function watchManifest(devices: Record<string, DeviceDraft>, pool: Partial<PoolDraft> = SMALL_POOL): ManifestDraft {
  return { pool: { name: 'w', ...pool, baseSize: '16M' }, layers: { l1: {} }, devices };
}

export function manifestText(devices: Record<string, DeviceDraft>, pool?: Partial<PoolDraft>): string {
  return manifestYaml(watchManifest(devices, pool));
}

/** Writes beside the file and renames over it, as editors and atomic saves do. */
export function atomicSave(file: string, text: string): void {
  const draft = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  fs.writeFileSync(draft, text);
  fs.renameSync(draft, file);
}

export function box(devices: (mnt: string) => Record<string, DeviceDraft>, pool?: Partial<PoolDraft>): Box {
  const root = tempDir('thinlayer-watch-sim-');
  const stateDir = path.join(root, 'state');
  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(mnt);
  fs.mkdirSync(path.join(root, 'conf'));
  const file = path.join(root, 'conf', 'm.yaml');
  fs.writeFileSync(file, manifestText(devices(mnt), pool));
  return {
    root,
    stateDir,
    mnt,
    file,
    sim: new SimKernel({ dir: path.join(stateDir, 'sim') }),
    write: (d, p) => atomicSave(file, manifestText(d, p)),
    status: () => api.status({ stateDir, backend: 'sim' }),
    async events() {
      const log = await EventLog.open(await openStateDir(stateDir));
      try {
        return (await log.readAll()).events;
      } finally {
        await log.close();
      }
    },
  };
}

export type WatchMessage = { code: string; [key: string]: any };

export interface RunningWatch {
  messages: WatchMessage[];
  exit: Promise<number>;
  stderr(): string;
  stop(): Promise<number>;
  /** Runs that ended (done or failed) so far. */
  runsEnded(): number;
  /** Waits until `more` further runs have ended. */
  moreRuns(more: number): Promise<void>;
}

/** Starts `thinlayer watch --json` in this process; it is stopped when the test ends. */
export function startWatch(
  b: Box,
  opts: { intervalMs?: number; metricsPort?: number | null; onMessage?: (m: WatchMessage, stop: () => void) => void } = {},
): RunningWatch {
  const messages: WatchMessage[] = [];
  const controller = new AbortController();
  let pending = '';
  let stderr = '';
  const out = new Writable({
    write(chunk, _enc, done) {
      pending += chunk.toString();
      for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
        const m = JSON.parse(pending.slice(0, nl)) as WatchMessage;
        pending = pending.slice(nl + 1);
        messages.push(m);
        opts.onMessage?.(m, () => controller.abort());
      }
      done();
    },
  });
  const err = new Writable({
    write(chunk, _enc, done) {
      stderr += chunk.toString();
      done();
    },
  });
  // Errors go to the entry point's one mapping to exit codes, as `thinlayer watch --json` has them.
  const exit = watchCommand({
    file: b.file,
    stateDir: b.stateDir,
    backend: 'sim',
    json: true,
    intervalMs: opts.intervalMs ?? 50,
    metricsPort: opts.metricsPort ?? null,
    out,
    err,
    signal: controller.signal,
  }).catch((e) => new CliOutput(out, err).failure(e, true));
  onTestFinished(async () => {
    controller.abort();
    await exit;
  });
  const runsEnded = () => messages.filter((m) => m.code === 'watch.run-done' || m.code === 'watch.run-failed').length;
  return {
    messages,
    exit,
    stderr: () => stderr,
    stop: async () => {
      controller.abort();
      return exit;
    },
    runsEnded,
    async moreRuns(more) {
      const target = runsEnded() + more;
      await waitFor(`${more} more run(s)`, () => runsEnded() >= target);
    },
  };
}

/** [name, observed state] of every device in the status. */
export async function deviceStates(b: Box): Promise<string[][]> {
  return (await b.status()).devices.map((d) => [d.name, d.state]);
}
