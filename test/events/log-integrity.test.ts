// The event log checks every line it reads: a checksum seals each line, a damaged complete line is
// refused wherever it is (the last one included), and only an unterminated last line is a torn
// write, kept whole under torn/ before it is cut off.

import fs from 'node:fs';
import { describe, expect, it, onTestFinished } from 'vitest';
import { StateError } from '../../src/errors/index.ts';
import { checksumHex, crc32, crc32Portable } from '../../src/events/checksum.ts';
import { EventLog } from '../../src/events/log.ts';
import { openStateDir, type StateDir } from '../../src/events/state-dir.ts';
import { listKeptTornTails } from '../../src/events/torn-tail.ts';
import type { ThinlayerEventBody } from '../../src/model/events.ts';
import { tempStateDir } from './helpers.ts';

const note = (i: number): ThinlayerEventBody => ({ type: 'recovery.note', kind: 'drift', detail: { i, text: 'ünïcødé ✓' } });
const committed = (key: string): ThinlayerEventBody =>
  ({ type: 'snapshot.set', key, record: { kind: 'committed', id: 'snapshot:1', parent: '', labels: {} } }) as unknown as ThinlayerEventBody;

async function openLog(stateDir: StateDir): Promise<EventLog> {
  const log = await EventLog.open(stateDir);
  onTestFinished(() => log.close());
  return log;
}

const logFile = (stateDir: StateDir) => stateDir.path('events.ndjson');

/** A line as thinlayer wrote it before lines had checksums. */
function legacyLine(seq: number, body: ThinlayerEventBody = note(seq)): string {
  return `${JSON.stringify({ seq, at: '2026-01-01T00:00:00.000Z', ...body })}\n`;
}

/** A log of `count` sealed events written by thinlayer, closed; returns the file's bytes. */
async function sealedLog(stateDir: StateDir, bodies: ThinlayerEventBody[]): Promise<Buffer> {
  const log = await EventLog.open(stateDir);
  await log.append(bodies);
  await log.close();
  return fs.readFileSync(logFile(stateDir));
}

function flipBit(buf: Buffer, at: number, bit = 0): Buffer {
  const copy = Buffer.from(buf);
  copy[at] ^= 1 << bit;
  return copy;
}

describe('the checksum', () => {
  it('is CRC-32, the same from zlib and from the portable table, over UTF-8 bytes', () => {
    expect(crc32Portable('123456789')).toBe(0xcbf43926); // the standard check value
    for (const text of ['', '{"seq":1', 'ünïcødé ✓ 𝄞', 'x'.repeat(10_000)]) {
      expect(crc32(text)).toBe(crc32Portable(text));
      expect(crc32(Buffer.from(text))).toBe(crc32Portable(text));
    }
    expect(checksumHex('')).toBe('00000000');
  });
});

describe('sealed lines', () => {
  it('ends every appended line in the CRC-32 of the bytes before it, and reads events without it', async () => {
    const stateDir = await tempStateDir();
    const bytes = await sealedLog(stateDir, [note(1), note(2), committed('c1')]);
    const lines = bytes.toString('utf8').split('\n').slice(0, -1);
    expect(lines).toHaveLength(3);
    for (const l of lines) {
      const m = /^(.*),"crc":"([0-9a-f]{8})"\}$/.exec(l);
      expect(m).not.toBeNull();
      expect(m![2]).toBe(checksumHex(m![1]));
    }
    const log = await openLog(stateDir);
    const { events } = await log.readAll();
    expect(events[0]).toEqual({ seq: 1, at: expect.any(String), ...note(1) });
    expect(events.every((e) => !('crc' in e))).toBe(true);
  });

  it('refuses a flipped bit anywhere in the last, complete line (a commit), naming the file and the line; nothing is cut', async () => {
    const stateDir = await tempStateDir();
    const whole = await sealedLog(stateDir, [note(1), note(2), committed('c1')]);
    const lastStart = whole.lastIndexOf(0x0a, whole.length - 2) + 1;
    for (let at = lastStart; at < whole.length; at += 1) {
      for (const bit of [0, 5]) {
        const damaged = flipBit(whole, at, bit);
        fs.writeFileSync(logFile(stateDir), damaged);
        const refused = EventLog.open(stateDir);
        await expect(refused, `byte ${at} bit ${bit}`).rejects.toBeInstanceOf(StateError);
        await expect(refused).rejects.toMatchObject({
          code: 'E_LOG_CORRUPT',
          message: expect.stringContaining(`event log ${logFile(stateDir)} is corrupt at line 3`),
        });
        // A reader refuses it the same way, and nothing was cut off or kept.
        await expect(EventLog.openForReading(stateDir)).rejects.toMatchObject({ code: 'E_LOG_CORRUPT' });
        expect(fs.readFileSync(logFile(stateDir)).equals(damaged)).toBe(true);
      }
    }
    expect(fs.existsSync(stateDir.path('torn'))).toBe(false);
  });

  it('says a damaged last line was written whole, so it is not a torn write', async () => {
    const stateDir = await tempStateDir();
    const whole = await sealedLog(stateDir, [note(1), committed('c1')]);
    fs.writeFileSync(logFile(stateDir), flipBit(whole, whole.length - 20));
    await expect(EventLog.open(stateDir)).rejects.toThrow(
      /line 2 .*checksum does not match.*ends in a newline, so it was written whole: this is damage, not a torn write/,
    );
  });

  it('refuses a flipped bit in a line in the middle when the log is read', async () => {
    const stateDir = await tempStateDir();
    const whole = await sealedLog(stateDir, [note(1), note(2), note(3), note(4)]);
    const secondLine = whole.indexOf(0x0a) + 1;
    fs.writeFileSync(logFile(stateDir), flipBit(whole, secondLine + 30, 1));
    const log = await openLog(stateDir); // the end is sound
    await expect(log.readAll()).rejects.toThrow(/corrupt at line 2 .*checksum does not match/);
    await expect(log.readFrom(0)).rejects.toThrow(/line 2/);
  });

  it('checks the lines a replay from a snapshot skips only through the seq prefix too', async () => {
    const stateDir = await tempStateDir();
    const whole = await sealedLog(stateDir, [note(1), note(2), note(3), note(4)]);
    const secondLine = whole.indexOf(0x0a) + 1;
    fs.writeFileSync(logFile(stateDir), flipBit(whole, secondLine + 40, 2));
    const log = await openLog(stateDir); // only the last two lines are checked on opening
    await expect(log.readFrom(2)).rejects.toThrow(/line 2/);
  });

  it('reads a log written before checksums, seals what it appends after, and refuses an unsealed line after a sealed one', async () => {
    const stateDir = await tempStateDir();
    fs.writeFileSync(logFile(stateDir), legacyLine(1) + legacyLine(2));
    const log = await openLog(stateDir);
    expect(log.lastSeq).toBe(2);
    await log.append([note(3)]);
    await log.close();
    const text = fs.readFileSync(logFile(stateDir), 'utf8');
    expect(text.split('\n')[2]).toMatch(/,"crc":"[0-9a-f]{8}"\}$/);
    const reopened = await openLog(stateDir);
    expect((await reopened.readAll()).events.map((e) => e.seq)).toEqual([1, 2, 3]);
    await reopened.close();

    // A line without a checksum after one with it: damage passing itself off as an old line.
    fs.appendFileSync(logFile(stateDir), legacyLine(4));
    await expect(EventLog.open(stateDir)).rejects.toThrow(/corrupt at line 4 .*carries no checksum, but the line before it does/);
    // The same in the middle, found by a full read.
    const middle = await tempStateDir();
    const sealed = await sealedLog(middle, [note(1)]);
    const later = await tempStateDir();
    const tail = await sealedLog(later, [note(1), note(2), note(3)]);
    const thirdLine = tail.subarray(tail.indexOf(0x0a, tail.indexOf(0x0a) + 1) + 1);
    fs.writeFileSync(logFile(middle), Buffer.concat([sealed, Buffer.from(legacyLine(2)), thirdLine]));
    const m = await openLog(middle);
    await expect(m.readAll()).rejects.toThrow(/corrupt at line 2 .*carries no checksum/);
  });

  it('refuses a whole line whose newline was damaged, rather than cutting it off as torn', async () => {
    const stateDir = await tempStateDir();
    const whole = await sealedLog(stateDir, [note(1), committed('c1')]);
    fs.writeFileSync(logFile(stateDir), flipBit(whole, whole.length - 1, 0)); // '\n' → 0x0b
    await expect(EventLog.open(stateDir)).rejects.toThrow(/corrupt at line 2 .*ends in byte 0x0b where its newline should be/);
    // The only line of a log, too.
    const single = await tempStateDir();
    const one = await sealedLog(single, [committed('c1')]);
    fs.writeFileSync(logFile(single), flipBit(one, one.length - 1, 3));
    await expect(EventLog.open(single)).rejects.toMatchObject({ code: 'E_LOG_CORRUPT' });
  });

  it('refuses a line without a checksum just after a snapshot offset, though the replay starts there', async () => {
    const stateDir = await tempStateDir();
    const sealedPart = await sealedLog(stateDir, [note(1), note(2)]);
    // Two old-style lines after sealed ones: the last two lines agree with each other, so only a
    // read that starts at the snapshot's offset, or a full read, can tell.
    fs.appendFileSync(logFile(stateDir), legacyLine(3) + legacyLine(4));
    const log = await openLog(stateDir);
    await expect(log.readFrom(2, sealedPart.length)).rejects.toThrow(/line 3 .*carries no checksum/);
  });
});

describe('a torn tail', () => {
  it('is kept whole in torn/ (0600, in a 0700 directory) before the log is cut back, however long', async () => {
    const stateDir = await tempStateDir();
    const whole = await sealedLog(stateDir, [note(1), note(2)]);
    const longLine = (
      await sealedLog(await tempStateDir(), [{ type: 'recovery.note', kind: 'drift', detail: { blob: 'y'.repeat(5000) } } as ThinlayerEventBody])
    ).toString('utf8');
    const torn = `{"seq":3${longLine.slice('{"seq":1'.length, 4000)}`;
    fs.appendFileSync(logFile(stateDir), torn);

    const log = await openLog(stateDir);
    const repaired = await log.repairTornTail();
    expect(repaired).toMatchObject({ offset: whole.length, bytes: Buffer.byteLength(torn) });
    expect(repaired!.keptAs).toMatch(new RegExp(`^torn/${whole.length}-\\d{4}-\\d\\d-\\d\\dT[\\d-]+Z\\.ndjson$`));
    const kept = stateDir.path(repaired!.keptAs);
    expect(fs.readFileSync(kept, 'utf8')).toBe(torn);
    expect(fs.statSync(kept).mode & 0o777).toBe(0o600);
    expect(fs.statSync(stateDir.path('torn')).mode & 0o777).toBe(0o700);
    expect(fs.readFileSync(logFile(stateDir)).equals(whole)).toBe(true);
    expect(await listKeptTornTails(stateDir)).toEqual([{ file: repaired!.keptAs, bytes: Buffer.byteLength(torn) }]);

    // Another torn write at the same offset later gets its own file.
    fs.appendFileSync(logFile(stateDir), '{"seq":3,"at"');
    const again = await log.repairTornTail();
    expect(again!.keptAs).not.toBe(repaired!.keptAs);
    expect((await listKeptTornTails(stateDir)).map((k) => k.file).sort()).toEqual([repaired!.keptAs, again!.keptAs].sort());
  });

  it('is a whole line without its newline too (the write stopped just before it): kept, not refused', async () => {
    const stateDir = await tempStateDir();
    const whole = await sealedLog(stateDir, [note(1), committed('c1')]);
    fs.writeFileSync(logFile(stateDir), whole.subarray(0, whole.length - 1));
    const log = await openLog(stateDir);
    expect(log.lastSeq).toBe(1);
    const repaired = await log.repairTornTail();
    expect(fs.readFileSync(stateDir.path(repaired!.keptAs), 'utf8')).toBe(whole.toString('utf8').split('\n')[1]);
  });

  it('is not cut off when it cannot be kept: a symlink at torn/ is refused', async () => {
    const stateDir = await tempStateDir();
    const whole = await sealedLog(stateDir, [note(1)]);
    fs.appendFileSync(logFile(stateDir), '{"seq":2');
    const outside = fs.mkdtempSync(`${stateDir.root}-outside-`);
    onTestFinished(() => fs.rmSync(outside, { recursive: true, force: true }));
    fs.symlinkSync(outside, stateDir.path('torn'));
    const log = await openLog(stateDir);
    await expect(log.repairTornTail()).rejects.toMatchObject({ code: 'E_STATE_PATH' });
    expect(fs.readFileSync(logFile(stateDir), 'utf8')).toBe(`${whole.toString('utf8')}{"seq":2`);
    expect(fs.readdirSync(outside)).toEqual([]);
  });

  it('is left alone by a reader: nothing is written, and the reader says it is there', async () => {
    const stateDir = await tempStateDir();
    const whole = await sealedLog(stateDir, [note(1)]);
    fs.appendFileSync(logFile(stateDir), '{"seq":2,"at":"');
    const before = fs.readdirSync(stateDir.root).sort();
    const reader = await EventLog.openForReading(await openStateDir(stateDir.root, { readOnly: true }));
    onTestFinished(() => reader?.close());
    expect(reader!.tornTail).toMatchObject({ offset: whole.length, bytes: 15 });
    expect((await reader!.readAll()).events.map((e) => e.seq)).toEqual([1]);
    await expect(reader!.repairTornTail()).rejects.toThrow();
    expect(fs.readdirSync(stateDir.root).sort()).toEqual(before);
    expect(fs.statSync(logFile(stateDir)).size).toBe(whole.length + 15);
  });
});
