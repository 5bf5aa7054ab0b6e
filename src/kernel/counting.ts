// Counting kernel calls: a wrapper around any KernelPort that tallies every call by name (and pool
// messages by their verb, e.g. `message create_snap`) with the time spent in it. The benchmarks
// compare these counts with the minimum a set of steps needs; with THINLAYER_COUNT_KERNEL_CALLS=1
// a session prints its tally when it closes its kernel, so the CLI can be measured as users run it.

import type { KernelPort } from './kernel-port.ts';

export const COUNT_KERNEL_CALLS_ENV = 'THINLAYER_COUNT_KERNEL_CALLS';
/** The printed tally is one line: this prefix, then the KernelCallTally as JSON. */
export const KERNEL_CALLS_LINE_PREFIX = 'thinlayer-kernel-calls ';

export interface KernelCallTally {
  /** Every call through the port (close excluded: it releases handles, it asks nothing of the kernel). */
  total: number;
  /** Calls by port method; pool messages by verb (`message create_snap`). */
  calls: Record<string, number>;
  /** Milliseconds spent inside the calls, by the same keys. */
  ms: Record<string, number>;
}

/** The key a call is counted under: the method, or for a message the method and its first word. */
export function callKey(method: string, args: readonly unknown[]): string {
  if (method === 'message' && typeof args[1] === 'string') return `message ${args[1].trim().split(/\s+/)[0]}`;
  return method;
}

export class KernelCallCounter {
  readonly #calls = new Map<string, { count: number; ms: number }>();

  /** Records one call (exported for wrappers that time calls themselves). */
  record(key: string, ms: number): void {
    const entry = this.#calls.get(key) ?? { count: 0, ms: 0 };
    entry.count += 1;
    entry.ms += ms;
    this.#calls.set(key, entry);
  }

  tally(): KernelCallTally {
    const calls: Record<string, number> = {};
    const ms: Record<string, number> = {};
    let total = 0;
    for (const [key, entry] of [...this.#calls].sort(([a], [b]) => a.localeCompare(b))) {
      calls[key] = entry.count;
      ms[key] = Math.round(entry.ms * 1000) / 1000;
      total += entry.count;
    }
    return { total, calls, ms };
  }

  reset(): void {
    this.#calls.clear();
  }

  /**
   * The same kernel, with every method call counted and timed. A failed call counts too: it reached
   * the kernel. `onClose` runs before the kernel's own close (to print the tally, for instance).
   */
  wrap(kernel: KernelPort, onClose?: (tally: KernelCallTally) => void): KernelPort {
    const counter = this;
    return new Proxy(kernel, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function') return value;
        // Bound to the real kernel: backends keep private fields a proxy as `this` could not reach.
        const method = value.bind(target) as (...args: unknown[]) => Promise<unknown>;
        if (prop === 'close') {
          return async () => {
            onClose?.(counter.tally());
            return method();
          };
        }
        return async (...args: unknown[]) => {
          const started = performance.now();
          try {
            return await method(...args);
          } finally {
            counter.record(callKey(String(prop), args), performance.now() - started);
          }
        };
      },
    });
  }
}

/**
 * With THINLAYER_COUNT_KERNEL_CALLS set (to anything but '' or '0'), the kernel wrapped so that its
 * close prints one `thinlayer-kernel-calls {json}` line to stderr; otherwise the kernel itself.
 */
export function countKernelCallsFromEnv(
  kernel: KernelPort,
  env: NodeJS.ProcessEnv = process.env,
  write: (line: string) => void = (line) => process.stderr.write(line),
): KernelPort {
  const flag = env[COUNT_KERNEL_CALLS_ENV];
  if (!flag || flag === '0') return kernel;
  return new KernelCallCounter().wrap(kernel, (tally) => write(`${KERNEL_CALLS_LINE_PREFIX}${JSON.stringify(tally)}\n`));
}

/** The tallies in some output (one per session that printed), summed; null when there are none. */
export function sumKernelCallLines(output: string): KernelCallTally | null {
  let sum: KernelCallTally | null = null;
  for (const line of output.split('\n')) {
    const at = line.indexOf(KERNEL_CALLS_LINE_PREFIX);
    if (at === -1) continue;
    const tally = JSON.parse(line.slice(at + KERNEL_CALLS_LINE_PREFIX.length)) as KernelCallTally;
    sum ??= { total: 0, calls: {}, ms: {} };
    sum.total += tally.total;
    for (const [key, n] of Object.entries(tally.calls)) sum.calls[key] = (sum.calls[key] ?? 0) + n;
    for (const [key, n] of Object.entries(tally.ms)) sum.ms[key] = (sum.ms[key] ?? 0) + n;
  }
  return sum;
}
