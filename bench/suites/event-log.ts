// Event log: how long one durable append takes as the log grows (1k, 10k, 100k events), how long a
// cold start takes at the largest size (open the log, load the snapshot, fold what follows it), and
// what the log and the snapshot cost on disk.
//
// The log is grown in batches of 1,000 events (one write and one fdatasync each, as fast as the
// disk allows); the appends that are timed are single events, each with its own fdatasync, exactly
// as the executor writes a step's intent. The events come from bench/fixtures/apply-events.ts.

import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { openStateDir } from '../../src/events/state-dir.ts';
import { EventLog } from '../../src/events/log.ts';
import { SnapshotStore } from '../../src/events/snapshot.ts';
import { replay } from '../../src/events/replay.ts';
import type { ThinlayerEvent, ThinlayerEventBody } from '../../src/model/events.ts';
import { initialState, PROJECTION_SCHEMA } from '../../src/lifecycle/projection.ts';
import type { EngineState } from '../../src/model/engine-state.ts';
import { foldInto, ownCopy, project } from '../../src/lifecycle/fold.ts';
import { ApplyShapedLog } from '../fixtures/apply-events.ts';
import { median, round, summarize } from '../stats.ts';
import type { Suite, SuiteContext, SuiteOutput } from '../suite.ts';

const GROW_BATCH = 1000;

/** Event bodies on demand, in the order apply would have written them. */
class EventSource {
  readonly #runs: Generator<ThinlayerEventBody[]>;
  #buffer: ThinlayerEventBody[] = [];
  constructor(log: ApplyShapedLog) {
    this.#runs = log.events(Number.MAX_SAFE_INTEGER);
  }
  take(n: number): ThinlayerEventBody[] {
    while (this.#buffer.length < n) this.#buffer.push(...this.#runs.next().value!);
    return this.#buffer.splice(0, n);
  }
}

export const eventLogSuite: Suite = {
  name: 'event-log',
  title: 'Event log: append latency, cold start, size on disk',
  async run(ctx: SuiteContext): Promise<SuiteOutput> {
    const sizes = ctx.quick ? [200, 1000, 5000] : [1_000, 10_000, 100_000];
    const appendsPerSize = ctx.quick ? 50 : 1000;
    const coldRuns = ctx.quick ? 3 : 7;
    const stateDir = await openStateDir(path.join(ctx.scratch, 'state'));
    const log = await EventLog.open(stateDir);
    const source = new EventSource(new ApplyShapedLog({ live: 100, batch: 10 }));
    const out: SuiteOutput = { metrics: {}, tables: [], targets: [], notes: [] };

    const appendRows: (string | number)[][] = [];
    const p99At = new Map<number, number>();
    const summaryAt = new Map<number, ReturnType<typeof summarize>>();
    try {
      for (const size of sizes) {
        const grow = Math.max(0, size - log.lastSeq);
        for (let left = grow; left > 0; left -= GROW_BATCH) await log.append(source.take(Math.min(GROW_BATCH, left)));
        const samples: number[] = [];
        for (let i = 0; i < appendsPerSize; i++) {
          const [body] = source.take(1);
          const started = performance.now();
          await log.append([body]);
          samples.push(performance.now() - started);
        }
        const s = summarize(samples);
        p99At.set(size, s.p99);
        summaryAt.set(size, s);
        appendRows.push([size, s.n, round(s.p50), round(s.p99), round(s.max)]);
        out.metrics[`append_p50_ms_at_${size}`] = { value: round(s.p50), unit: 'ms' };
        out.metrics[`append_p99_ms_at_${size}`] = { value: round(s.p99), unit: 'ms' };
        ctx.log(`event log: ${size} events, append p50 ${round(s.p50)} ms, p99 ${round(s.p99)} ms`);
      }
    } finally {
      await log.close();
    }
    out.tables.push({
      title: 'Append latency (one event, one write, one fdatasync)',
      columns: ['events in the log', 'appends timed', 'p50 (ms)', 'p99 (ms)', 'max (ms)'],
      rows: appendRows,
      note: `The log is grown to each size in batches of ${GROW_BATCH}; then ${appendsPerSize} single-event appends are timed one by one.`,
    });

    // --- cold start at the largest size ------------------------------------------------------
    const largest = sizes[sizes.length - 1];
    const all = await readEvents(stateDir);
    const tail = Math.min(1000, Math.floor(all.length / 10));
    const snapshotSeq = all.length - tail;
    const atSnapshot = project(all.slice(0, snapshotSeq));
    const state = project(all.slice(snapshotSeq), atSnapshot);
    // Where each snapshot's last event ends in the log, as a session records it when it saves one.
    const text = fs.readFileSync(stateDir.path('events.ndjson'));
    const offsetAfter = (seq: number) => {
      let at = 0;
      for (let i = 0; i < seq; i++) at = text.indexOf(0x0a, at) + 1;
      return at;
    };
    const store = await SnapshotStore.open<EngineState>(stateDir);
    // The digest of the line a snapshot ends at, as a session stores it (replay checks it).
    const lineDigest = (end: number) =>
      createHash('sha256')
        .update(text.subarray(text.lastIndexOf(0x0a, end - 2) + 1, end))
        .digest('hex');
    const coldRows: (string | number)[][] = [];
    /** `snapshotAt`: the seq of the snapshot that `prepare` leaves, null for none. */
    const measureCold = async (label: string, prepare: () => Promise<void>, snapshotAt: number | null, runsWanted = coldRuns) => {
      await prepare();
      const expectReplayed = all.length - (snapshotAt ?? 0);
      const runs: number[] = [];
      let parts = { open: 0, snapshot: 0, read: 0, fold: 0 };
      for (let i = 0; i < runsWanted; i++) {
        const t0 = performance.now();
        const l = await EventLog.open(stateDir);
        const s = await SnapshotStore.open<EngineState>(stateDir);
        const t1 = performance.now();
        // As a session replays: in place, into a state of its own.
        const r = await replay(
          l,
          s,
          (st, e) => (foldInto(st, e), st),
          () => ownCopy(initialState()),
          PROJECTION_SCHEMA,
        );
        const t2 = performance.now();
        await l.close();
        runs.push(t2 - t0);
        if (r.replayed !== expectReplayed) throw new Error(`cold start "${label}" folded ${r.replayed} events, expected ${expectReplayed}`);
        if (r.seq !== all.length) throw new Error(`cold start "${label}" ended at seq ${r.seq}, the log at ${all.length}`);
        if (i === runsWanted - 1) parts = await coldStartParts(stateDir, snapshotAt ?? 0, t1 - t0);
      }
      const m = median(runs);
      coldRows.push([label, expectReplayed, round(m), round(runs[0]), round(parts.open), round(parts.snapshot), round(parts.read), round(parts.fold)]);
      return { ms: m, parts };
    };
    const { ms: withTail, parts: tailParts } = await measureCold(
      `snapshot ${tail} events behind`,
      () => store.save(snapshotSeq, atSnapshot, PROJECTION_SCHEMA, offsetAfter(snapshotSeq), lineDigest(offsetAfter(snapshotSeq))),
      snapshotSeq,
    );
    await measureCold('snapshot at the end', () => store.save(all.length, state, PROJECTION_SCHEMA, text.length, lineDigest(text.length)), all.length);
    const snapshotBytes = fs.statSync(store.file).size;
    const { ms: full } = await measureCold('no snapshot (full replay)', async () => fs.rmSync(store.file), null, Math.min(coldRuns, 3));
    out.tables.push({
      title: `Cold start at ${all.length} events (open the log, load the snapshot, fold the rest)`,
      columns: ['snapshot', 'events folded', 'median (ms)', 'first run (ms)', 'open log (ms)', 'load snapshot (ms)', 'read log (ms)', 'fold (ms)'],
      rows: coldRows,
      note: `Median of ${coldRuns} runs in one process (3 without a snapshot); the page cache is warm, and the first run is the nearest to a fresh process. The parts are timed in a separate run.`,
    });
    out.metrics.cold_start_ms = { value: round(withTail), unit: 'ms' };
    out.metrics.cold_start_full_replay_ms = { value: round(full), unit: 'ms' };

    const logBytes = fs.statSync(path.join(stateDir.root, 'events.ndjson')).size;
    out.tables.push({
      title: 'Size on disk',
      columns: ['file', 'events', 'bytes', 'bytes per event'],
      rows: [
        ['events.ndjson', all.length, logBytes, round(logBytes / all.length)],
        ['snapshot.json', all.length, snapshotBytes, null],
      ],
      note: `The projection at the end holds ${Object.keys(state.things).length} thin devices and a manifest of ${state.desired?.devices.length ?? 0} devices.`,
    });
    out.metrics.log_bytes = { value: logBytes, unit: 'bytes' };
    out.metrics.snapshot_bytes = { value: snapshotBytes, unit: 'bytes' };

    const p99Small = p99At.get(sizes[0])!;
    const p99Large = p99At.get(largest)!;
    out.targets.push({
      target: `appends stay flat: p99 at ${largest} events ≤ 1.5 × p99 at ${sizes[0]}`,
      measured: `p99 ${round(p99Large)} ms at ${largest}, ${round(p99Small)} ms at ${sizes[0]} (× ${round(p99Large / p99Small)})`,
      met: p99Large <= 1.5 * p99Small,
    });
    out.targets.push({
      target: `cold start (snapshot plus replay) at ${largest} events under 300 ms`,
      measured: `${round(withTail)} ms (snapshot ${tail} events behind); ${round(full)} ms without a snapshot`,
      met: withTail < 300,
    });
    const p50Small = summaryAt.get(sizes[0])!.p50;
    const p50Large = summaryAt.get(largest)!.p50;
    out.notes.push(
      `The median append went from ${round(p50Small)} ms at ${sizes[0]} events to ${round(p50Large)} ms at ${largest}: an append writes one line at the end of the open file and never reads the log back, so its cost does not depend on the log's length; what moves is the disk's fdatasync, whose tail decides p99.`,
      `Of the cold start with a snapshot ${tail} events behind, reading the log took ${round(tailParts.read)} ms (only the bytes after the snapshot's offset are read) and folding ${tail} events ${round(tailParts.fold)} ms (${round((tailParts.fold / tail) * 1000)} µs an event, folded in place into the session's state).`,
      'Events are apply-shaped (bench/fixtures/apply-events.ts): runs that replace 10 of 100 mounted devices, each run a desired.set with the whole manifest and the intent and done events of every step.',
      'The state dir is on the same file system as the system temporary directory; fdatasync there decides the append figures, and its tail (p99) moves with whatever else the disk is doing.',
    );
    return out;
  },
};

async function readEvents(stateDir: Awaited<ReturnType<typeof openStateDir>>): Promise<ThinlayerEvent[]> {
  const l = await EventLog.open(stateDir);
  try {
    const { events, tornTail } = await l.readAll();
    if (tornTail) throw new Error('the benchmark log has a torn tail');
    return events;
  } finally {
    await l.close();
  }
}

/** Where a cold start's time goes: opening the log, loading the snapshot, reading the events after it, folding them. */
async function coldStartParts(stateDir: Awaited<ReturnType<typeof openStateDir>>, fromSeq: number, openMs: number) {
  const l = await EventLog.open(stateDir);
  try {
    const s = await SnapshotStore.open<EngineState>(stateDir);
    const t0 = performance.now();
    const snap = await s.load();
    const t1 = performance.now();
    const events = await l.readFrom(fromSeq, snap && snap.seq === fromSeq ? snap.offset : undefined);
    const t2 = performance.now();
    const state = snap && snap.seq === fromSeq ? snap.state : ownCopy(initialState());
    for (const e of events) foldInto(state, e);
    const t3 = performance.now();
    return { open: openMs, snapshot: t1 - t0, read: t2 - t1, fold: t3 - t2 };
  } finally {
    await l.close();
  }
}
