import fs from 'node:fs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { EventLog } from '../../src/events/log.ts';
import { replay } from '../../src/events/replay.ts';
import { SnapshotStore } from '../../src/events/snapshot.ts';
import type { ThinlayerEvent, ThinlayerEventBody } from '../../src/model/events.ts';
import { tempStateDir } from './helpers.ts';

interface Tally {
  runs: string[];
  notes: number;
  lastSeq: number;
}
const initial = (): Tally => ({ runs: [], notes: 0, lastSeq: 0 });
/** A pure fold that depends on every event and on their order. */
const fold = (state: Tally, e: ThinlayerEvent): Tally => ({
  runs: e.type === 'run.started' ? [...state.runs, `${e.runId}@${e.seq}`] : state.runs,
  notes: state.notes + (e.type === 'recovery.note' ? 1 : 0),
  lastSeq: e.seq,
});
const started = (runId: string): ThinlayerEventBody => ({ type: 'run.started', runId, command: 'apply', pid: 1 });
const note = (i: number): ThinlayerEventBody => ({ type: 'recovery.note', kind: 'drift', detail: { i } });

async function openLog(stateDir: Awaited<ReturnType<typeof tempStateDir>>) {
  const log = await EventLog.open(stateDir);
  onTestFinished(() => log.close());
  return log;
}

describe('SnapshotStore', () => {
  it('saves and loads a snapshot, in a real file even under NODE_ENV=test', async () => {
    const stateDir = await tempStateDir();
    const store = await SnapshotStore.open<Tally>(stateDir);
    expect(await store.load()).toBeNull();
    const state: Tally = { runs: ['r1@1'], notes: 2, lastSeq: 3 };
    await store.save(3, state, 7);
    expect(process.env.NODE_ENV).toBe('test');
    expect(JSON.parse(fs.readFileSync(stateDir.path('snapshot.json'), 'utf8'))).toMatchObject({ seq: 3, schema: 7, state });

    const reopened = await SnapshotStore.open<Tally>(stateDir);
    expect(await reopened.load()).toEqual({ seq: 3, state, schema: 7 });
    await reopened.save(4, { ...state, lastSeq: 4 }, 7);
    expect((await store.load())?.seq).toBe(4); // another store's save is seen: load reads the file
  });

  it('uses another file name when asked', async () => {
    const stateDir = await tempStateDir();
    const store = await SnapshotStore.open<number>(stateDir, 'other.json');
    await store.save(1, 42, 1);
    expect(fs.existsSync(stateDir.path('other.json'))).toBe(true);
    expect(fs.existsSync(stateDir.path('snapshot.json'))).toBe(false);
  });

  it.each([
    ['truncated JSON', '{"seq": 3, "schema": 1, "sta'],
    ['not an object', '[1, 2, 3]'],
    ['no state', '{"seq": 3, "schema": 1}'],
    ['a negative seq', '{"seq": -1, "schema": 1, "state": {}}'],
    ['a fractional schema', '{"seq": 1, "schema": 1.5, "state": {}}'],
    ['empty', ''],
  ])('loads a snapshot file with %s as null', async (_what, content) => {
    const stateDir = await tempStateDir();
    fs.writeFileSync(stateDir.path('snapshot.json'), content);
    const store = await SnapshotStore.open<Tally>(stateDir);
    expect(await store.load()).toBeNull();
  });

  it('seals its content: a flipped byte anywhere (a key, a number) loads as null, as does a snapshot without a checksum', async () => {
    const stateDir = await tempStateDir();
    const store = await SnapshotStore.open<{ things: Record<string, { thinId: number }> }>(stateDir);
    await store.save(3, { things: { 'snapshot:1': { thinId: 5 } } }, 7, 100, 'a'.repeat(64));
    const file = stateDir.path('snapshot.json');
    const sealed = fs.readFileSync(file);
    expect(sealed.toString()).toMatch(/,"checksum":"[0-9a-f]{8}"\}$/);
    expect(await store.load()).toMatchObject({ seq: 3, state: { things: { 'snapshot:1': { thinId: 5 } } } });
    for (let at = 0; at < sealed.length; at += 1) {
      const damaged = Buffer.from(sealed);
      damaged[at] ^= 0x02; // '5' -> '7', ':' -> '8', ...
      fs.writeFileSync(file, damaged);
      expect(await store.load(), `byte ${at}`).toBeNull();
    }
    // Written before snapshots had a checksum: a cache, so it is simply rebuilt.
    fs.writeFileSync(file, JSON.stringify({ seq: 3, schema: 7, state: { things: {} } }));
    expect(await store.load()).toBeNull();
  });

  it('loads null once the file is gone, not what it read before', async () => {
    const stateDir = await tempStateDir();
    const store = await SnapshotStore.open<Tally>(stateDir);
    await store.save(1, initial(), 1);
    expect(await store.load()).not.toBeNull();
    fs.rmSync(stateDir.path('snapshot.json'));
    expect(await store.load()).toBeNull();
  });

  it('refuses a snapshot name that leaves the state dir', async () => {
    const stateDir = await tempStateDir();
    await expect(SnapshotStore.open(stateDir, '../snapshot.json')).rejects.toThrow(/`\.\.` segment/);
  });
});

describe('replay', () => {
  it('from a snapshot plus the tail equals a full replay', async () => {
    const stateDir = await tempStateDir();
    const log = await openLog(stateDir);
    const store = await SnapshotStore.open<Tally>(stateDir);
    await log.append([started('r1'), note(1), note(2)]);
    await log.append([started('r2'), note(3)]);

    const first = await replay(log, store, fold, initial, 1);
    expect(first).toMatchObject({ seq: 5, replayed: 5, fromSnapshot: false });
    await store.save(first.seq, first.state, 1, log.endOffset, await log.lineDigestEndingAt(log.endOffset));

    await log.append([started('r3'), note(4)]);
    await log.append([note(5)]);

    const incremental = await replay(log, store, fold, initial, 1);
    expect(incremental).toMatchObject({ seq: 8, replayed: 3, fromSnapshot: true });

    await fs.promises.rm(stateDir.path('snapshot.json'));
    const full = await replay(log, store, fold, initial, 1);
    expect(full).toMatchObject({ seq: 8, replayed: 8, fromSnapshot: false });
    expect(incremental.state).toEqual(full.state);
    expect(full.state).toEqual({ runs: ['r1@1', 'r2@4', 'r3@6'], notes: 5, lastSeq: 8 });
  });

  it('replays the log when snapshot.json is damaged, to the state a replay without it gives', async () => {
    const stateDir = await tempStateDir();
    const log = await openLog(stateDir);
    const store = await SnapshotStore.open<Tally>(stateDir);
    await log.append([started('r1'), note(1), started('r2')]);
    const first = await replay(log, store, fold, initial, 1);
    await store.save(first.seq, first.state, 1, log.endOffset, await log.lineDigestEndingAt(log.endOffset));
    const file = stateDir.path('snapshot.json');
    // r1@1 -> r1@3 in the snapshot's state: well-formed JSON, a plausible state, and wrong.
    const text = fs.readFileSync(file, 'utf8');
    expect(text).toContain('"r1@1"');
    fs.writeFileSync(file, text.replace('"r1@1"', '"r1@3"'));
    const result = await replay(log, store, fold, initial, 1);
    expect(result).toMatchObject({ fromSnapshot: false, replayed: 3 });
    fs.rmSync(file);
    expect(result.state).toEqual((await replay(log, store, fold, initial, 1)).state);
    expect(result.state.runs).toEqual(['r1@1', 'r2@3']);
  });

  it('ignores a snapshot of another schema', async () => {
    const stateDir = await tempStateDir();
    const log = await openLog(stateDir);
    const store = await SnapshotStore.open<Tally>(stateDir);
    await log.append([started('r1'), note(1)]);
    await store.save(2, { runs: ['from an older fold'], notes: 99, lastSeq: 2 }, 1);
    const result = await replay(log, store, fold, initial, 2);
    expect(result).toMatchObject({ fromSnapshot: false, replayed: 2 });
    expect(result.state).toEqual({ runs: ['r1@1'], notes: 1, lastSeq: 2 });
  });

  it('ignores a snapshot beyond the end of the log (the log was replaced)', async () => {
    const stateDir = await tempStateDir();
    const log = await openLog(stateDir);
    const store = await SnapshotStore.open<Tally>(stateDir);
    await log.append([note(1)]);
    await store.save(50, { runs: ['another log'], notes: 50, lastSeq: 50 }, 1);
    const result = await replay(log, store, fold, initial, 1);
    expect(result).toMatchObject({ fromSnapshot: false, replayed: 1, seq: 1 });
    expect(result.state.runs).toEqual([]);
  });

  it('replays an empty log to the initial state, and a snapshot at the last seq folds nothing', async () => {
    const stateDir = await tempStateDir();
    const log = await openLog(stateDir);
    const store = await SnapshotStore.open<Tally>(stateDir);
    expect(await replay(log, store, fold, initial, 1)).toEqual({ state: initial(), seq: 0, replayed: 0, fromSnapshot: false });
    await log.append([note(1)]);
    const once = await replay(log, store, fold, initial, 1);
    await store.save(once.seq, once.state, 1, log.endOffset, await log.lineDigestEndingAt(log.endOffset));
    expect(await replay(log, store, fold, initial, 1)).toEqual({ ...once, replayed: 0, fromSnapshot: true });
  });

  it('discards a snapshot without the digest of the line it ends at', async () => {
    const stateDir = await tempStateDir();
    const log = await openLog(stateDir);
    const store = await SnapshotStore.open<Tally>(stateDir);
    await log.append([note(1)]);
    await store.save(1, { runs: ['unchecked'], notes: 9, lastSeq: 1 }, 1, log.endOffset);
    expect(await replay(log, store, fold, initial, 1)).toMatchObject({ fromSnapshot: false, state: { runs: [], notes: 1 } });
  });

  it('discards a snapshot of another log that ends at the same seq and offset, and replays this one', async () => {
    // Two logs of the same length in bytes and events, different in content: a snapshot made from
    // one and put beside the other must not be taken for it.
    const mine = await tempStateDir();
    const theirs = await tempStateDir();
    const myLog = await openLog(mine);
    const theirLog = await openLog(theirs);
    await myLog.append([started('aa'), note(1)]);
    await theirLog.append([started('bb'), note(2)]);
    expect(theirLog.endOffset).toBe(myLog.endOffset);
    const theirState = await replay(theirLog, await SnapshotStore.open<Tally>(theirs), fold, initial, 1);
    const store = await SnapshotStore.open<Tally>(mine);
    await store.save(theirState.seq, theirState.state, 1, theirLog.endOffset, await theirLog.lineDigestEndingAt(theirLog.endOffset));
    const result = await replay(myLog, store, fold, initial, 1);
    expect(result).toMatchObject({ fromSnapshot: false, replayed: 2 });
    expect(result.state.runs).toEqual(['aa@1']);
  });
});
