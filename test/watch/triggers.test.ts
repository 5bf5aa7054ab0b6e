import { describe, expect, it, onTestFinished } from 'vitest';
import { poolEvents$, aborted$, processSignal$, type Trigger } from '../../src/watch/triggers.ts';
import { waitFor } from './helpers.ts';

describe('trigger streams', () => {
  it('pool events: a trigger each time the event counter moves, not for the first reading or a missing pool', async () => {
    const readings: Array<number | null | Error> = [3, 3, null, 3, 4, 4, new Error('EIO'), 4, 6];
    let i = 0;
    const seen: Trigger[] = [];
    const sub = poolEvents$(async () => {
      const r = readings[Math.min(i++, readings.length - 1)];
      if (r instanceof Error) throw r;
      return r;
    }, 1).subscribe((t) => seen.push(t));
    onTestFinished(() => sub.unsubscribe());
    await waitFor('all readings', () => i >= readings.length + 2);
    expect(seen).toEqual([
      { kind: 'pool-event', detail: 'event_nr 4' },
      { kind: 'pool-event', detail: 'event_nr 6' },
    ]);
  });

  it('pool events: a counter a run looked at is the starting point, so an event after it is not taken for one', async () => {
    // The poll could not read during the run; the run saw 7; the first reading after it is 8.
    const lookedAt = { value: 7 };
    const readings = [8, 8, 9];
    let i = 0;
    const seen: Trigger[] = [];
    const sub = poolEvents$(async () => readings[Math.min(i++, readings.length - 1)], 1, lookedAt).subscribe((t) => seen.push(t));
    onTestFinished(() => sub.unsubscribe());
    await waitFor('all readings', () => i >= readings.length + 2);
    expect(seen).toEqual([
      { kind: 'pool-event', detail: 'event_nr 8' },
      { kind: 'pool-event', detail: 'event_nr 9' },
    ]);
    expect(lookedAt.value).toBe(9);
  });

  it('aborted$ fires at once for a signal already aborted', async () => {
    const c = new AbortController();
    c.abort();
    let fired = false;
    aborted$(c.signal).subscribe(() => (fired = true));
    expect(fired).toBe(true);
  });

  it('SIGHUP becomes a hangup trigger, and the handler goes away with the subscription', async () => {
    const before = process.listenerCount('SIGHUP');
    const seen: Trigger[] = [];
    const sub = processSignal$('SIGHUP').subscribe((t) => seen.push(t));
    expect(process.listenerCount('SIGHUP')).toBe(before + 1);
    process.kill(process.pid, 'SIGHUP');
    await waitFor('the hangup', () => seen.length === 1);
    expect(seen[0]).toEqual({ kind: 'hangup', detail: 'SIGHUP' });
    sub.unsubscribe();
    expect(process.listenerCount('SIGHUP')).toBe(before);
  });
});
