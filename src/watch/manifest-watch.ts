// Following the manifest file. Two halves:
//   manifestChanges$: a trigger whenever the file's content changes. The directory is watched,
//     not the file: editors and atomic saves write a new file and rename it over the old one, after
//     which a watch on the old file's inode hears nothing more.
//   ManifestFollower: the manifest each run uses. A valid edit becomes the desired state; an
//     invalid one is reported (once per distinct content) and the last valid manifest is kept.

import { sameDesired } from '../plan/desired-state.ts';
import { watch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { basename, dirname, resolve } from 'node:path';
import { Observable } from 'rxjs';
import { parseManifest } from '../manifest/load.ts';
import { readTrustedManifest } from './trust.ts';
import type { Manifest } from '../model/manifest.ts';
import { UserError } from '../errors/index.ts';
import type { Trigger } from './triggers.ts';

/** The file's content digest, or 'absent' when it cannot be read (mid-rename, deleted). */
async function digestOf(file: string): Promise<string> {
  try {
    return createHash('sha256')
      .update(await readFile(file))
      .digest('hex');
  } catch {
    return 'absent';
  }
}

export interface ManifestWatchOptions {
  /** Quiet time after the last file event before the content is compared (editors write in bursts). */
  settleMs?: number;
  /** After the directory watch fails (the directory was replaced), how soon to watch it again. */
  rewatchMs?: number;
}

/** A 'manifest' trigger each time the file's content differs from what it was at the last look. */
export function manifestChanges$(file: string, opts: ManifestWatchOptions = {}): Observable<Trigger> {
  const absolute = resolve(file);
  const dir = dirname(absolute);
  const name = basename(absolute);
  const settleMs = opts.settleMs ?? 50;
  const rewatchMs = opts.rewatchMs ?? 1000;

  return new Observable<Trigger>((subscriber) => {
    let watcher: FSWatcher | null = null;
    let settle: NodeJS.Timeout | null = null;
    let rewatch: NodeJS.Timeout | null = null;
    let closed = false;
    // Compared against the content when watching began, so the first save is seen as a change.
    let last: Promise<string> = digestOf(absolute);

    const compare = () => {
      settle = null;
      const previous = last;
      last = previous.then(async (before) => {
        const now = await digestOf(absolute);
        if (!closed && now !== before && now !== 'absent') subscriber.next({ kind: 'manifest', detail: absolute });
        // A file that vanished mid-rename keeps the old digest: the rename's own event brings the new one.
        return now === 'absent' ? before : now;
      });
    };
    const start = () => {
      rewatch = null;
      if (closed) return;
      try {
        watcher = watch(dir, { persistent: false }, (_event, changed) => {
          // Some platforms give no name: then any change in the directory is worth a look.
          if (changed !== null && changed.toString() !== name) return;
          if (settle) clearTimeout(settle);
          settle = setTimeout(compare, settleMs);
        });
        watcher.on('error', () => {
          watcher?.close();
          watcher = null;
          rewatch = setTimeout(start, rewatchMs);
        });
        // Anything saved between the first digest and the watch starting is caught by this look.
        compare();
      } catch {
        rewatch = setTimeout(start, rewatchMs);
      }
    };
    start();
    return () => {
      closed = true;
      watcher?.close();
      if (settle) clearTimeout(settle);
      if (rewatch) clearTimeout(rewatch);
    };
  });
}

export type ManifestReading =
  | { kind: 'valid'; manifest: Manifest; changed: boolean }
  /** The file is unreadable or invalid: `kept` is the last valid manifest (null when there was none). */
  | { kind: 'invalid'; error: UserError; kept: Manifest | null; firstReport: boolean };

/** The manifest for each run: the file's if it is valid, else the last valid one. */
export class ManifestFollower {
  private lastValid: Manifest | null = null;
  private lastValidText: string | null = null;
  private lastReported: string | null = null;

  constructor(
    readonly file: string,
    /** How messages name the file (the path as the user gave it). */
    private readonly shownAs: string = file,
  ) {}

  get current(): Manifest | null {
    return this.lastValid;
  }

  async read(): Promise<ManifestReading> {
    const absolute = resolve(this.file);
    let text: string;
    try {
      const read = await readTrustedManifest(absolute);
      if ('untrusted' in read) {
        const message = `${this.shownAs}: watch applies only a manifest that only root can change: ${read.untrusted}`;
        return this.invalid(
          new UserError(
            message,
            { file: this.shownAs, expected: 'a file and directory owned by root, not writable by group or others' },
            'E_MANIFEST_UNTRUSTED',
          ),
          `untrusted:${read.untrusted}`,
        );
      }
      text = read.text;
    } catch (e) {
      const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
      return this.invalid(
        new UserError(`${this.shownAs}: cannot read the manifest: ${reason}`, { file: this.shownAs, expected: 'a readable manifest file' }),
        `unreadable:${reason}`,
      );
    }
    if (text === this.lastValidText && this.lastValid) {
      this.lastReported = null;
      return { kind: 'valid', manifest: this.lastValid, changed: false };
    }
    try {
      const manifest = parseManifest(text, absolute, { shownAs: this.shownAs });
      const changed = !sameDesired(manifest, this.lastValid);
      this.lastValid = manifest;
      this.lastValidText = text;
      this.lastReported = null;
      return { kind: 'valid', manifest, changed };
    } catch (e) {
      if (e instanceof UserError) return this.invalid(e, text);
      throw e;
    }
  }

  private invalid(error: UserError, identity: string): ManifestReading {
    const firstReport = this.lastReported !== identity;
    this.lastReported = identity;
    return { kind: 'invalid', error, kept: this.lastValid, firstReport };
  }
}
