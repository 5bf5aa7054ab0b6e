// A progress bar redrawn in place on a terminal, for long work such as a layer's extraction:
// what is done of the total, the rate, and the time left at that rate.
//
//   fedora  [##########..........]  52%  512 MiB of 980 MiB  48 MiB/s  10s left

import { formatBytes, formatDuration, formatRate } from '../messages/format.ts';

const WIDTH = 24;

/** The bar's line for a task `done` of `total` after `elapsedMs`: pure, so tests read it. */
export function progressLine(task: string, done: number, total: number, unit: string, elapsedMs: number): string {
  const fraction = total > 0 ? Math.min(1, done / total) : 0;
  const filled = Math.round(fraction * WIDTH);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(WIDTH - filled)}]`;
  const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
  const amounts = unit === 'bytes' ? `${formatBytes(done)} of ${formatBytes(total)}` : `${done} of ${total} ${unit}`;
  const rate = elapsedMs > 0 ? (done * 1000) / elapsedMs : 0;
  const parts = [task, bar, percent, amounts];
  if (rate > 0 && unit === 'bytes') parts.push(formatRate(rate));
  if (rate > 0 && done < total) parts.push(`${formatDuration(((total - done) / rate) * 1000)} left`);
  return parts.join('  ');
}

export class ProgressBar {
  private task: string | null = null;
  private startedAt = 0;
  private shown = false;

  constructor(
    private readonly out: NodeJS.WritableStream,
    private readonly now: () => number = () => performance.now(),
  ) {}

  update(task: string, done: number, total: number, unit: string): void {
    if (task !== this.task) {
      this.task = task;
      this.startedAt = this.now();
    }
    const columns = (this.out as NodeJS.WriteStream).columns ?? 100;
    const line = progressLine(task, done, total, unit, this.now() - this.startedAt).slice(0, Math.max(20, columns - 1));
    this.out.write(`\r\x1b[2K${line}`);
    this.shown = true;
  }

  /** Takes the bar off the line, so the next line of text starts clean. */
  clear(): void {
    if (!this.shown) return;
    this.out.write('\r\x1b[2K');
    this.shown = false;
    this.task = null;
  }
}
