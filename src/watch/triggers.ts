// The trigger streams of watch mode. Each says why a reconcile should run; the loop (loop.ts)
// merges them and runs one reconcile at a time. Sources that need the file system or the kernel
// live in their own files (manifest-watch.ts, requests.ts) or take a probe function, so the
// streams here stay free of I/O of their own.

import { Observable, defer, from, map, merge, of, timer, filter, exhaustMap, catchError } from 'rxjs';

export type TriggerKind =
  | 'start' // the watcher started
  | 'interval' // the periodic drift check
  | 'manifest' // the manifest file changed
  | 'hangup' // SIGHUP
  | 'pool-event' // the pool's device-mapper event counter moved (low-water mark, mode change)
  | 'request' // another thinlayer command asked (a request file in the state dir)
  | 'retry'; // the previous run failed

export interface Trigger {
  kind: TriggerKind;
  /** E.g. the requesting command, or the pool's new event number. */
  detail?: string;
}

/** One trigger at once, then one every `periodMs`: the drift check. */
export function startAndInterval$(periodMs: number): Observable<Trigger> {
  return merge(of<Trigger>({ kind: 'start' }), timer(periodMs, periodMs).pipe(map((): Trigger => ({ kind: 'interval' }))));
}

/** A trigger for every delivery of a process signal (SIGHUP); the handler is removed on unsubscribe. */
export function processSignal$(name: NodeJS.Signals, kind: TriggerKind = 'hangup'): Observable<Trigger> {
  return new Observable<Trigger>((subscriber) => {
    const handler = () => subscriber.next({ kind, detail: name });
    process.on(name, handler);
    return () => process.off(name, handler);
  });
}

/** Emits once and completes when the signal is aborted (at once if it already is). */
export function aborted$(signal: AbortSignal): Observable<void> {
  return new Observable<void>((subscriber) => {
    const fire = () => {
      subscriber.next();
      subscriber.complete();
    };
    if (signal.aborted) {
      fire();
      return;
    }
    signal.addEventListener('abort', fire, { once: true });
    return () => signal.removeEventListener('abort', fire);
  });
}

/** The pool's event counter as last looked at: by the poll, or by a run that checked the pool itself. */
export interface LookedAt {
  value: number | null;
}

/**
 * Pool events. The kernel raises a device-mapper event on the pool when free data space falls
 * below the low-water mark, when the pool changes mode (out of space, read-only) and when it is
 * resized; the event counter (event_nr in DM_DEV_STATUS) counts them. `probe` reads the counter
 * (null when there is no pool); this polls it and emits when it moves past the value last looked
 * at. The first value looked at is where we start from, not an event. A run that checks the pool
 * itself records the counter it saw in `lookedAt`: without that, a poll that cannot read while a
 * run is busy would take an event that came after the run as its starting point, and lose it. A
 * failing probe is a pool that cannot be read just now, not a reason to end the stream.
 */
export function poolEvents$(probe: () => Promise<number | null>, periodMs: number, lookedAt: LookedAt = { value: null }): Observable<Trigger> {
  return timer(0, periodMs).pipe(
    // exhaustMap: a slow probe is not started again on top of itself.
    exhaustMap(() => defer(() => from(probe())).pipe(catchError(() => of(null)))),
    filter((n): n is number => n !== null),
    filter((n) => {
      const before = lookedAt.value;
      lookedAt.value = n;
      return before !== null && n !== before;
    }),
    map((n): Trigger => ({ kind: 'pool-event', detail: `event_nr ${n}` })),
  );
}
