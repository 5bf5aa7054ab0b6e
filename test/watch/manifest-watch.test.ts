import { describe, expect, it, onTestFinished } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { manifestChanges$, ManifestFollower } from '../../src/watch/manifest-watch.ts';
import type { Trigger } from '../../src/watch/triggers.ts';
import { tempDir, waitFor } from './helpers.ts';
import { manifestYaml, simPool, type DeviceDraft } from '../builders/manifest.ts';

const manifest = (devices: Record<string, DeviceDraft>) =>
  manifestYaml({
    pool: simPool('demo', { data: { file: 'data.img', size: '1G' }, metadata: { file: 'metadata.img', size: '16M' }, baseSize: '64M' }),
    layers: { base1: {} },
    devices,
  });

/** Writes a new file beside it and renames it over the old one, as editors and atomic saves do. */
function atomicSave(file: string, text: string): void {
  const draft = path.join(path.dirname(file), `.${path.basename(file)}.swp`);
  fs.writeFileSync(draft, text);
  fs.renameSync(draft, file);
}

describe('following the manifest', () => {
  it('keeps the last valid manifest when an edit is invalid, and reports each bad content once', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'm.yaml');
    fs.writeFileSync(file, manifest({ d1: { layer: 'base1', state: 'activated' } }));
    const follower = new ManifestFollower(file, 'm.yaml');
    const first = await follower.read();
    expect(first.kind === 'valid' && first.changed).toBe(true);
    expect(first.kind === 'valid' && first.manifest.devices.map((d) => d.name)).toEqual(['d1']);

    const unchanged = await follower.read();
    expect(unchanged.kind === 'valid' && unchanged.changed).toBe(false);

    atomicSave(file, manifest({ d1: { layer: 'nosuchlayer', state: 'activated' } }));
    const bad = await follower.read();
    expect(bad.kind).toBe('invalid');
    if (bad.kind !== 'invalid') return;
    expect(bad.error.message).toContain('m.yaml');
    expect(bad.error.message).toContain('nosuchlayer');
    expect(bad.firstReport).toBe(true);
    expect(bad.kept?.devices.map((d) => d.name)).toEqual(['d1']);
    const again = await follower.read();
    expect(again.kind === 'invalid' && again.firstReport).toBe(false);

    fs.rmSync(file);
    const gone = await follower.read();
    expect(gone.kind === 'invalid' && gone.firstReport && gone.error.message).toMatch(/cannot read the manifest: no such file/);

    atomicSave(file, manifest({ d1: { layer: 'base1', state: 'activated' }, d2: { layer: 'base1', state: 'created' } }));
    const fixed = await follower.read();
    expect(fixed.kind === 'valid' && fixed.changed).toBe(true);
    expect(follower.current?.devices.map((d) => d.name)).toEqual(['d1', 'd2']);
  });

  it('sees saves that replace the file by rename, again and again, and ignores other files in the directory', async () => {
    const dir = tempDir();
    const file = path.join(dir, 'm.yaml');
    fs.writeFileSync(file, manifest({}));
    // What the file said at each trigger: a trigger for unchanged content would show up as a repeat.
    const seen: string[] = [];
    const sub = manifestChanges$(file, { settleMs: 5 }).subscribe((t: Trigger) => {
      expect(t).toEqual({ kind: 'manifest', detail: file });
      seen.push(/devices:\n(.*)/.exec(fs.readFileSync(file, 'utf8'))![1].trim());
    });
    onTestFinished(() => sub.unsubscribe());
    // Let the watch start before the first save.
    await new Promise((r) => setTimeout(r, 30));

    atomicSave(file, manifest({ d1: { layer: 'base1' } }));
    await waitFor('the first save', () => seen.length === 1);
    atomicSave(file, manifest({ d2: { layer: 'base1' } }));
    await waitFor('the second save, after the file was replaced', () => seen.length === 2);

    fs.writeFileSync(path.join(dir, 'other.yaml'), 'x');
    await new Promise((r) => setTimeout(r, 30));
    atomicSave(file, manifest({ d2: { layer: 'base1' } })); // same content: no change to report
    await new Promise((r) => setTimeout(r, 30));
    atomicSave(file, manifest({ d3: { layer: 'base1' } }));
    await waitFor('the third save', () => seen.includes('d3: { layer: base1 }'));
    expect(seen).toEqual(['d1: { layer: base1 }', 'd2: { layer: base1 }', 'd3: { layer: base1 }']);
  });
});
