import fs from 'node:fs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { StateError } from '../../src/errors/index.ts';
import { EventLog } from '../../src/events/log.ts';
import type { StateDir } from '../../src/events/state-dir.ts';
import type { ThinlayerEvent, ThinlayerEventBody } from '../../src/model/events.ts';
import { tempStateDir } from './helpers.ts';

const note = (i: number): ThinlayerEventBody => ({ type: 'recovery.note', kind: 'drift', detail: { i } });
const started = (runId: string): ThinlayerEventBody => ({ type: 'run.started', runId, command: 'apply', pid: 1 });

async function openLog(stateDir: StateDir, now?: () => Date): Promise<EventLog> {
  const log = await EventLog.open(stateDir, now ? { now } : {});
  onTestFinished(() => log.close());
  return log;
}

function logFile(stateDir: StateDir): string {
  return stateDir.path('events.ndjson');
}

/** An event line as the log writes it, for building files by hand. */
function line(seq: number, body: ThinlayerEventBody = note(seq)): string {
  return `${JSON.stringify({ seq, at: '2026-01-01T00:00:00.000Z', ...body })}\n`;
}

describe('EventLog append and read', () => {
  it('round-trips events across close and reopen, stamping seq and at', async () => {
    const stateDir = await tempStateDir();
    const clock = () => new Date('2026-03-04T05:06:07.000Z');
    const log = await openLog(stateDir, clock);
    expect(log.lastSeq).toBe(0);
    const first = await log.append([started('r1'), note(1)]);
    const second = await log.append([note(2)]);
    expect(first.map((e) => e.seq)).toEqual([1, 2]);
    expect(second[0]).toEqual({ seq: 3, at: '2026-03-04T05:06:07.000Z', type: 'recovery.note', kind: 'drift', detail: { i: 2 } });
    await log.close();

    const reopened = await openLog(stateDir);
    expect(reopened.lastSeq).toBe(3);
    const { events, tornTail } = await reopened.readAll();
    expect(tornTail).toBeNull();
    expect(events).toEqual([...first, ...second]);
    // The file is private and every line is one event.
    expect(fs.statSync(logFile(stateDir)).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(logFile(stateDir), 'utf8').split('\n')).toHaveLength(4);
  });

  it('continues the seq across reopen and reads from a seq', async () => {
    const stateDir = await tempStateDir();
    const a = await openLog(stateDir);
    await a.append([note(1), note(2)]);
    await a.close();
    const b = await openLog(stateDir);
    const appended = await b.append([note(3)]);
    expect(appended[0].seq).toBe(3);
    expect((await b.readFrom(1)).map((e) => e.seq)).toEqual([2, 3]);
    expect(await b.readFrom(3)).toEqual([]);
    expect(await b.append([])).toEqual([]);
    expect(b.lastSeq).toBe(3);
  });

  it('keeps the log seq, not one a re-appended event carries', async () => {
    const stateDir = await tempStateDir();
    const log = await openLog(stateDir);
    const body = { ...note(1), seq: 42, at: 'then' } as unknown as ThinlayerEventBody;
    const [event] = await log.append([body]);
    expect(event.seq).toBe(1);
    expect(event.at).not.toBe('then');
    expect(fs.readFileSync(logFile(stateDir), 'utf8')).toMatch(/^\{"seq":1,"at":"/);
  });

  it('serialises concurrent appends on one instance into a gapless seq in file order', async () => {
    const stateDir = await tempStateDir();
    const log = await openLog(stateDir);
    const batches = await Promise.all(Array.from({ length: 10 }, (_, i) => log.append([note(i), note(i)])));
    expect(
      batches
        .flat()
        .map((e) => e.seq)
        .sort((x, y) => x - y),
    ).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    const { events } = await log.readAll();
    expect(events.map((e) => e.seq)).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
  });

  it('picks up events another instance appended instead of reusing their seqs', async () => {
    const stateDir = await tempStateDir();
    const a = await openLog(stateDir);
    const b = await openLog(stateDir);
    await a.append([note(1), note(2)]);
    const [fromB] = await b.append([note(3)]);
    expect(fromB.seq).toBe(3);
    const [fromA] = await a.append([note(4)]);
    expect(fromA.seq).toBe(4);
    expect((await a.readAll()).events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
  });

  it('refuses to append after close', async () => {
    const stateDir = await tempStateDir();
    const log = await EventLog.open(stateDir);
    await log.close();
    await log.close();
    await expect(log.append([note(1)])).rejects.toThrow(/is closed/);
  });

  it('refuses an event log that is a symlink', async () => {
    const stateDir = await tempStateDir();
    fs.writeFileSync(stateDir.path('elsewhere.ndjson'), '');
    fs.symlinkSync(stateDir.path('elsewhere.ndjson'), logFile(stateDir));
    await expect(EventLog.open(stateDir)).rejects.toThrow(StateError);
  });
});

describe("EventLog read from a snapshot's offset", () => {
  it('starts where event seq ends, and reads the whole log when the offset is not there', async () => {
    const stateDir = await tempStateDir();
    const log = await openLog(stateDir);
    await log.append([note(1), note(2)]);
    const atTwo = log.endOffset;
    await log.append([note(3), note(4)]);
    expect(atTwo).toBe(Buffer.byteLength(fs.readFileSync(logFile(stateDir), 'utf8').split('\n').slice(0, 2).join('\n')) + 1);
    expect((await log.readFrom(2, atTwo)).map((e) => e.seq)).toEqual([3, 4]);
    expect(await log.readFrom(4, log.endOffset)).toEqual([]);
    // Wrong hints: mid-line, the start of another event, beyond the end, a seq that does not end there.
    for (const [seq, offset] of [
      [2, atTwo - 3],
      [2, 0],
      [2, log.endOffset + 10],
      [1, atTwo],
      [3, log.endOffset],
    ]) {
      expect((await log.readFrom(seq, offset)).map((e) => e.seq)).toEqual([1, 2, 3, 4].filter((s) => s > seq));
    }
  });

  it('appends non-durable events that later reads and a reopen see', async () => {
    const stateDir = await tempStateDir();
    const log = await EventLog.open(stateDir, { exclusive: true });
    await log.append([note(1)], { durable: false });
    await log.append([note(2)]);
    await log.append([note(3)], { durable: false });
    expect((await log.readFrom(0)).map((e) => e.seq)).toEqual([1, 2, 3]);
    await log.close();
    const reopened = await openLog(stateDir);
    expect(reopened.lastSeq).toBe(3);
  });
});

describe('EventLog torn tail', () => {
  it('reports an unterminated last line, refuses to append after it, repairs it, then appends on', async () => {
    const stateDir = await tempStateDir();
    const log = await openLog(stateDir);
    await log.append([note(1), note(2), note(3)]);
    await log.close();
    const whole = fs.statSync(logFile(stateDir)).size;
    const half = line(4).slice(0, 25);
    fs.appendFileSync(logFile(stateDir), half);

    const reopened = await openLog(stateDir);
    expect(reopened.lastSeq).toBe(3);
    const { events, tornTail } = await reopened.readAll();
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(tornTail).toEqual({ offset: whole, bytes: 25, data: Buffer.from(half) });

    await expect(reopened.append([note(4)])).rejects.toMatchObject({ code: 'E_LOG_TORN' });

    const repaired = await reopened.repairTornTail();
    expect(repaired).toEqual({ offset: whole, bytes: 25, keptAs: expect.stringMatching(new RegExp(`^torn/${whole}-.*\\.ndjson$`)) });
    expect(fs.readFileSync(stateDir.path(repaired!.keptAs), 'utf8')).toBe(half);
    expect(fs.statSync(logFile(stateDir)).size).toBe(whole);
    expect(await reopened.repairTornTail()).toBeNull();

    const [recorded] = await reopened.append([{ type: 'recovery.note', kind: 'torn-tail', detail: { bytes: 25 } }]);
    expect(recorded.seq).toBe(4);
    const after = await reopened.readAll();
    expect(after.tornTail).toBeNull();
    expect(after.events.map((e) => e.seq)).toEqual([1, 2, 3, 4]);
  });

  it('refuses a last line that ends in a newline but is not an event: written whole, so damaged, not torn', async () => {
    const stateDir = await tempStateDir();
    const content = `${line(1) + line(2)}\0\0\0garbage\n`;
    fs.writeFileSync(logFile(stateDir), content);
    const refused = EventLog.open(stateDir);
    await expect(refused).rejects.toMatchObject({ code: 'E_LOG_CORRUPT' });
    await expect(refused).rejects.toThrow(`event log ${logFile(stateDir)} is corrupt at line 3`);
    await expect(EventLog.openForReading(stateDir)).rejects.toMatchObject({ code: 'E_LOG_CORRUPT' });
    expect(fs.readFileSync(logFile(stateDir), 'utf8')).toBe(content); // nothing cut
  });

  it('treats a whole file of one unterminated line as an empty log with a torn tail', async () => {
    const stateDir = await tempStateDir();
    fs.writeFileSync(logFile(stateDir), '{"seq":1,"at":"x"');
    const log = await openLog(stateDir);
    expect(log.lastSeq).toBe(0);
    expect((await log.readAll()).tornTail).toEqual({ offset: 0, bytes: 17, data: Buffer.from('{"seq":1,"at":"x"') });
    await log.repairTornTail();
    expect((await log.append([note(1)]))[0].seq).toBe(1);
  });

  it('finds the last event behind a line longer than the window it reads back from the end', async () => {
    const stateDir = await tempStateDir();
    const big = { type: 'recovery.note', kind: 'drift', detail: { blob: 'x'.repeat(300_000) } } as ThinlayerEventBody;
    fs.writeFileSync(logFile(stateDir), `${line(1) + line(2, big) + line(3, big)}{"seq":4,"at":"2026-01-01T00:00:00.000Z","type":"recovery.no`);
    const log = await openLog(stateDir);
    expect(log.lastSeq).toBe(3);
    expect((await log.readAll()).tornTail?.offset).toBe((line(1) + line(2, big) + line(3, big)).length);
  });
});

describe('EventLog corruption', () => {
  it('refuses a corrupt line in the middle, naming the file and the line', async () => {
    const stateDir = await tempStateDir();
    fs.writeFileSync(logFile(stateDir), `${line(1)}{"seq":2,"at":"x",oops}\n${line(3)}${line(4)}${line(5)}`);
    const log = await openLog(stateDir); // the end of the file is sound, so open succeeds
    expect(log.lastSeq).toBe(5);
    const failure = log.readAll();
    await expect(failure).rejects.toThrow(StateError);
    await expect(failure).rejects.toThrow(`event log ${logFile(stateDir)} is corrupt at line 2`);
    await expect(log.readFrom(0)).rejects.toThrow(/line 2/);
  });

  it('refuses at open when the line before a torn tail is corrupt', async () => {
    const stateDir = await tempStateDir();
    fs.writeFileSync(logFile(stateDir), `${line(1) + line(2)}not json\n{"seq":4`);
    await expect(EventLog.open(stateDir)).rejects.toThrow(/corrupt at line 3/);
  });

  it('refuses a gap or a repeat in the seq', async () => {
    const stateDir = await tempStateDir();
    fs.writeFileSync(logFile(stateDir), line(1) + line(2) + line(4) + line(5));
    const log = await openLog(stateDir);
    await expect(log.readAll()).rejects.toThrow(/line 3.*seq 4 follows seq 2/);
    // At the end of the file, opening finds it.
    const atEnd = await tempStateDir();
    fs.writeFileSync(logFile(atEnd), line(1) + line(2) + line(4));
    await expect(EventLog.open(atEnd)).rejects.toThrow(/line 3.*seq 4 follows seq 2/);

    const other = await tempStateDir();
    fs.writeFileSync(logFile(other), line(1) + line(2) + line(2));
    await expect(EventLog.open(other)).rejects.toMatchObject({ code: 'E_LOG_CORRUPT' });
  });

  it('names the line of corruption that another process appended after this one opened', async () => {
    const stateDir = await tempStateDir();
    fs.writeFileSync(logFile(stateDir), line(1) + line(2));
    const log = await openLog(stateDir);
    fs.appendFileSync(logFile(stateDir), `junk\n${line(3)}`);
    await expect(log.append([note(3)])).rejects.toThrow(/corrupt at line 3/);
  });

  it('refuses to append when the file shrank beneath it', async () => {
    const stateDir = await tempStateDir();
    const log = await openLog(stateDir);
    await log.append([note(1), note(2)]);
    fs.truncateSync(logFile(stateDir), 0);
    await expect(log.append([note(3)])).rejects.toMatchObject({ code: 'E_LOG_REPLACED' });
  });
});

describe('EventLog.follow', () => {
  it('yields the events after fromSeq, then those another instance appends', async () => {
    const stateDir = await tempStateDir();
    const writer = await openLog(stateDir);
    await writer.append([note(1), note(2)]);
    const reader = await openLog(stateDir);
    const controller = new AbortController();
    onTestFinished(() => controller.abort());

    const seen: ThinlayerEvent[] = [];
    const following = (async () => {
      for await (const event of reader.follow(1, { signal: controller.signal, pollMs: 5 })) {
        seen.push(event);
        if (event.seq === 2) await writer.append([note(3)]); // appended while the follower waits
        if (event.seq === 3) await writer.append([note(4), note(5)]);
        if (event.seq === 5) controller.abort();
      }
    })();
    await following;
    expect(seen.map((e) => e.seq)).toEqual([2, 3, 4, 5]);
    expect(seen[2]).toMatchObject({ type: 'recovery.note', detail: { i: 4 } });
  });

  it('waits at a torn tail and goes on once it is repaired and appended after', async () => {
    const stateDir = await tempStateDir();
    fs.writeFileSync(logFile(stateDir), `${line(1)}{"seq":2,"at`);
    const reader = await openLog(stateDir);
    const controller = new AbortController();
    onTestFinished(() => controller.abort());
    const seen: number[] = [];
    for await (const event of reader.follow(0, { signal: controller.signal, pollMs: 5 })) {
      seen.push(event.seq);
      if (event.seq === 1) {
        const writer = await openLog(stateDir);
        await writer.repairTornTail();
        await writer.append([note(2)]);
      }
      if (event.seq === 2) controller.abort();
    }
    expect(seen).toEqual([1, 2]);
  });

  it('ends quietly when aborted while waiting', async () => {
    const stateDir = await tempStateDir();
    const log = await openLog(stateDir);
    const controller = new AbortController();
    const iterator = log.follow(0, { signal: controller.signal, pollMs: 1000 })[Symbol.asyncIterator]();
    const next = iterator.next();
    controller.abort();
    expect(await next).toEqual({ done: true, value: undefined });
  });
});
