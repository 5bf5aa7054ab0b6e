// Progress of an apply for a terminal line: reported at most every PROGRESS_INTERVAL_MS, and always
// once at the end, so that a renderer draws the last state.

export const PROGRESS_INTERVAL_MS = 100;

export interface ProgressMeter {
  advance(bytes: number): void;
  finish(): void;
}

export function progressMeter(total: number, report?: (done: number, total: number) => void, now: () => number = Date.now): ProgressMeter {
  let done = 0;
  let last = -Infinity;
  return {
    advance(bytes) {
      done += bytes;
      if (!report) return;
      const t = now();
      if (t - last >= PROGRESS_INTERVAL_MS) {
        last = t;
        report(Math.min(done, total), total);
      }
    },
    finish() {
      report?.(total, total);
    },
  };
}
