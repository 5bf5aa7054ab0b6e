// What watch applies on its own, without anyone at a terminal, must come from files only root can
// change: the manifest file and the directory it is watched in are checked like the state directory
// (owned by root, not writable by group or others) before an edit is applied. Layer sources are
// read, not obeyed, so one owned by someone else is reported rather than refused.

import { constants as fsc } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { dirname } from 'node:path';
import { untrustedDirectory, untrustedFile } from '../host/path-trust.ts';
import { parseOciSource } from '../layers/oci-layout.ts';
import type { Manifest } from '../model/manifest.ts';

/**
 * The manifest's text, read through a descriptor whose owner and mode were checked, or why it is
 * not trusted. The file itself must not be a symlink (O_NOFOLLOW): its directory is the one checked.
 */
export async function readTrustedManifest(absolute: string): Promise<{ text: string } | { untrusted: string }> {
  const dir = dirname(absolute);
  const dirStat = await lstat(dir);
  if (dirStat.isSymbolicLink()) return { untrusted: `its directory ${dir} is a symlink` };
  const dirWhy = untrustedFile(dirStat); // no sticky exception: anyone could add a file watch reads
  if (dirWhy) return { untrusted: `its directory ${dir}: ${dirWhy}` };
  let handle;
  try {
    handle = await open(absolute, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') return { untrusted: 'it is a symlink; give the file itself' };
    throw e;
  }
  try {
    const why = untrustedFile(await handle.stat());
    if (why) return { untrusted: why };
    return { text: await handle.readFile('utf8') };
  } finally {
    await handle.close();
  }
}

export interface UntrustedSource {
  layer: string;
  source: string;
  why: string;
}

/** Layer sources (files, directories, OCI layouts) that someone but root owns or can write. */
export async function untrustedSources(manifest: Manifest): Promise<UntrustedSource[]> {
  const found: UntrustedSource[] = [];
  for (const layer of manifest.layers) {
    if (!layer.source) continue;
    const path = parseOciSource(layer.source)?.layout ?? layer.source;
    const st = await lstat(path).catch(() => null);
    if (st === null) continue; // missing: resolving the content says so
    const why = st.isDirectory() ? untrustedDirectory(st) : untrustedFile(st);
    if (why) found.push({ layer: layer.name, source: path, why });
  }
  return found;
}
