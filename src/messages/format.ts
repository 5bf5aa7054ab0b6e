// Human renderings of quantities, shared by the terminal renderer and watch mode's live view.

/** Bytes in binary units, rounded for reading (formatSize in src/manifest is the exact form). */
export function formatBytes(n: number): string {
  const units = ['B', 'K', 'M', 'G', 'T', 'P'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 10 || u === 0 ? Math.round(v) : v.toFixed(1)}${units[u]}`;
}
