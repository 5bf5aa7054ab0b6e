// Parsing /proc/self/mountinfo (proc(5)): pure, so it is tested without a kernel.

import type { MountEntry } from '../kernel-port.ts';

/** mountinfo escapes space, tab, newline and backslash as octal (\040 ...). */
function unescapeOctal(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * One entry per line: `id parent major:minor root mountpoint mountopts [optional...] - fstype source superopts`.
 * `options` are the mount's own options followed by the filesystem's, each once.
 */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const fields = line.split(' ');
    const separator = fields.indexOf('-', 6);
    if (separator < 0 || fields.length < separator + 4) continue;
    const [major, minor] = fields[2].split(':').map(Number);
    const options = [...new Set([...fields[5].split(','), ...fields[separator + 3].split(',')])].filter(Boolean);
    entries.push({
      source: unescapeOctal(fields[separator + 2]),
      major,
      minor,
      mountpoint: unescapeOctal(fields[4]),
      fstype: fields[separator + 1],
      options,
    });
  }
  return entries;
}
