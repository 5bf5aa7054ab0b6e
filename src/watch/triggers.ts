// The trigger streams of watch mode. Each says why a reconcile should run; the loop (loop.ts)
// merges them and runs one reconcile at a time. Sources that need the file system or the kernel
// live in their own files (manifest-watch.ts, requests.ts) or take a probe function, so the
// streams here stay free of I/O of their own.

import { Observable, defer, from, map, merge, of, timer, distinctUntilChanged, filter, skip, exhaustMap, catchError } from 'rxjs';

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

/**
 * Pool events. The kernel raises a device-mapper event on the pool when free data space falls
 * below the low-water mark, when the pool changes mode (out of space, read-only) and when it is
 * resized; the event counter (event_nr in DM_DEV_STATUS) counts them. `probe` reads the counter
 * (null when there is no pool); this polls it and emits when it moves. A failing probe is a pool
 * that cannot be read just now, not a reason to end the stream.
 */
export function poolEvents$(probe: () => Promise<number | null>, periodMs: number): Observable<Trigger> {
  return timer(0, periodMs).pipe(
    // exhaustMap: a slow probe is not started again on top of itself.
    exhaustMap(() => defer(() => from(probe())).pipe(catchError(() => of(null)))),
    filter((n): n is number => n !== null),
    distinctUntilChanged(),
    skip(1), // the first reading is where we start from, not an event
    map((n): Trigger => ({ kind: 'pool-event', detail: `event_nr ${n}` })),
  );
}
