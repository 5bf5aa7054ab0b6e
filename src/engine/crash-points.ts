// Fault injection: with THINLAYER_CRASH_POINT=k the process kills itself with SIGKILL (no cleanup, no
// flush) at the k-th boundary, a boundary being just before or just after a kernel mutation or an
// event append. The crash-walk test runs every k to prove that recovery converges from anywhere.
// THINLAYER_CRASH_TRACE=all lists every boundary on stderr (`boundary k: label`), crash or not: the
// walk reads it to pick the boundaries of each step op in a manifest too large to walk whole.

import type { KernelPort } from '../kernel/kernel-port.ts';

const MUTATIONS = [
  'create',
  'load',
  'suspend',
  'resume',
  'remove',
  'message',
  'loopAttach',
  'loopDetach',
  'loopSetCapacity',
  'discard',
  'mkfs',
  'growfs',
  'mount',
  'unmount',
] as const;

export class CrashPoints {
  private count = 0;
  constructor(private readonly crashAt: number | null = parseCrashPoint(process.env.THINLAYER_CRASH_POINT)) {}

  /** How many boundaries have been passed in this process. */
  get passed(): number {
    return this.count;
  }

  private readonly traceAll = process.env.THINLAYER_CRASH_TRACE === 'all';

  boundary(label: string): void {
    this.count += 1;
    if (this.traceAll) process.stderr.write(`boundary ${this.count}: ${label}\n`);
    if (this.crashAt !== null && this.count === this.crashAt) {
      if (process.env.THINLAYER_CRASH_TRACE) process.stderr.write(`crash point ${this.count}: ${label}\n`);
      process.kill(process.pid, 'SIGKILL');
    }
  }

  /** The kernel port with a boundary before and after every mutating call. */
  wrapKernel(kernel: KernelPort): KernelPort {
    if (this.crashAt === null && !process.env.THINLAYER_CRASH_COUNT && !this.traceAll) return kernel;
    const points = this;
    return new Proxy(kernel, {
      get(target, prop, receiver) {
        const value = Reflect.get(target, prop, receiver);
        if (typeof value !== 'function' || !(MUTATIONS as readonly string[]).includes(prop as string))
          return typeof value === 'function' ? value.bind(target) : value;
        return async (...args: unknown[]) => {
          points.boundary(`before ${String(prop)}`);
          const result = await value.apply(target, args);
          points.boundary(`after ${String(prop)}`);
          return result;
        };
      },
    });
  }
}

function parseCrashPoint(text: string | undefined): number | null {
  if (!text) return null;
  const n = Number(text);
  return Number.isInteger(n) && n > 0 ? n : null;
}
