// Where a snapshotter call spends its time, measured in the process that serves it: the simulated
// kernel's methods, the event log's appends and the session's open and refresh are timed by
// wrapping their prototypes for the length of a measurement (nothing in src/ knows of it). Time is
// given to the innermost part running (a kernel call made while a session opens counts as kernel),
// so the parts add up to the server's time for the call; what the client saw beyond that is gRPC.
// The calls measured go one at a time, so nothing else runs beside them to blur the split.

import { SimKernel } from '../src/kernel/sim/index.ts';
import { EventLog } from '../src/events/log.ts';
import { Session } from '../src/engine/session.ts';
import { SnapshotService } from '../src/snapshotter/service.ts';

export const PARTS = ['kernel writes', 'kernel reads', 'log append + fdatasync', 'log read', 'session open (lock, replay)', 'other'] as const;
export type Part = (typeof PARTS)[number];

/** Kernel calls that only look (observation, a device's info for Mounts); the rest change something. */
const KERNEL_READS = new Set(['listDevices', 'info', 'table', 'status', 'mounts', 'mountedAt', 'loopFind', 'loopList', 'listThinIds', 'blockDeviceSize']);

export class CallSplit {
  readonly #totals = new Map<Part, number>();
  /** The parts running now, innermost last, each with the time its children took. */
  readonly #stack: { part: Part; start: number; children: number }[] = [];
  #undo: (() => void)[] = [];
  #serverMs = 0;

  /** Starts timing: the prototypes are wrapped until stop(). */
  start(): void {
    if (this.#undo.length) return;
    const kernelProto = SimKernel.prototype as unknown as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(SimKernel.prototype)) {
      if (name === 'constructor' || name === 'close' || name === 'reboot') continue;
      const d = Object.getOwnPropertyDescriptor(SimKernel.prototype, name);
      if (!d || typeof d.value !== 'function') continue;
      this.#wrap(kernelProto, name, KERNEL_READS.has(name) ? 'kernel reads' : 'kernel writes');
    }
    this.#wrap(EventLog.prototype as unknown as Record<string, unknown>, 'append', 'log append + fdatasync');
    this.#wrap(Session.prototype as unknown as Record<string, unknown>, 'refresh', 'log read');
    this.#wrap(Session as unknown as Record<string, unknown>, 'open', 'session open (lock, replay)');
    // The service's calls: their time beyond the parts above is `other`, and their sum is the server's.
    for (const name of ['prepare', 'commit', 'remove', 'mounts', 'stat', 'list', 'usage'])
      this.#wrap(SnapshotService.prototype as unknown as Record<string, unknown>, name, 'other', true);
  }

  stop(): void {
    for (const undo of this.#undo.reverse()) undo();
    this.#undo = [];
  }

  /** Milliseconds inside the service's methods since the last reset: the server's part of the calls. */
  get serverMs(): number {
    return this.#serverMs;
  }

  reset(): void {
    this.#totals.clear();
    this.#serverMs = 0;
  }

  totals(): Record<Part, number> {
    return Object.fromEntries(PARTS.map((p) => [p, this.#totals.get(p) ?? 0])) as Record<Part, number>;
  }

  #wrap(target: Record<string, unknown>, name: string, part: Part, server = false): void {
    const original = target[name] as (...args: unknown[]) => unknown;
    const split = this;
    const kernel = part === 'kernel reads' || part === 'kernel writes';
    target[name] = function (this: unknown, ...args: unknown[]) {
      // The simulated kernel's own helpers (a method calling another) count with the call the
      // snapshotter made: a read stays a read however the simulation answers it.
      const top = split.#stack.at(-1)?.part;
      if (kernel && (top === 'kernel reads' || top === 'kernel writes')) return original.apply(this, args);
      return split.#timed(part, () => original.apply(this, args), server);
    };
    this.#undo.push(() => {
      target[name] = original;
    });
  }

  /** Sync work stays sync (Stat and List answer without awaiting), async work is timed to its settling. */
  #timed<T>(part: Part, work: () => T, server = false): T {
    const frame = { part, start: performance.now(), children: 0 };
    this.#stack.push(frame);
    const end = () => {
      const took = performance.now() - frame.start;
      if (server) this.#serverMs += took;
      const at = this.#stack.lastIndexOf(frame);
      if (at >= 0) this.#stack.splice(at, 1);
      const parent = at > 0 ? this.#stack[at - 1] : undefined;
      if (parent) parent.children += took;
      this.#totals.set(part, (this.#totals.get(part) ?? 0) + Math.max(0, took - frame.children));
    };
    let result: T;
    try {
      result = work();
    } catch (e) {
      end();
      throw e;
    }
    if (result instanceof Promise) return result.finally(end) as T;
    end();
    return result;
  }
}
