// Human renderings of quantities, shared by the terminal renderer and watch mode's live view.
// Sizes are in IEC binary units (KiB, MiB, GiB), as lsblk and lvs print them; --json keeps bytes.

const IEC = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'];

/** Bytes in IEC units, rounded for reading: `512 B`, `4 KiB`, `1.5 GiB`, `12 GiB`. */
export function formatBytes(n: number): string {
  let v = n;
  let u = 0;
  while (Math.abs(v) >= 1024 && u < IEC.length - 1) {
    v /= 1024;
    u++;
  }
  const shown = u === 0 || Math.abs(v) >= 10 ? String(Math.round(v)) : v.toFixed(1).replace(/\.0$/, '');
  return `${shown} ${IEC[u]}`;
}

/** A rate in IEC units a second: `12 MiB/s`. */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** A duration for people: `45s`, `3m 20s`, `2h 5m`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** `1 device`, `2 devices`; `many` for a plural that is not `one` + s (`2 passes`). */
export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

const NATURAL = new Intl.Collator('en', { numeric: true });

/** Natural order, as people count: d2 before d10. */
export function naturalCompare(a: string, b: string): number {
  return NATURAL.compare(a, b);
}

/** `a`, `a and b`, `a, b and c`. */
export function listOf(parts: string[]): string {
  return parts.length <= 1 ? (parts[0] ?? '') : `${parts.slice(0, -1).join(', ')} and ${parts[parts.length - 1]}`;
}
