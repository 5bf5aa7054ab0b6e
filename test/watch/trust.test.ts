import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import { ManifestFollower } from '../../src/watch/manifest-watch.ts';
import { untrustedSources } from '../../src/watch/trust.ts';
import { manifest } from '../engine/fixtures.ts';
import { manifestText } from './sim-harness.ts';

function confDir(): { root: string; conf: string; file: string } {
  const root = mkdtempSync(join(tmpdir(), 'thinlayer-trust-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  const conf = join(root, 'conf');
  mkdirSync(conf, { mode: 0o755 });
  const file = join(conf, 'm.yaml');
  writeFileSync(file, manifestText({ d1: { layer: 'l1' } }), { mode: 0o644 });
  return { root, conf, file };
}

describe('the manifest watch follows', () => {
  it('is applied only while the file and its directory are root-owned and not writable by group or others', async () => {
    const { conf, file } = confDir();
    const follower = new ManifestFollower(file);
    expect((await follower.read()).kind).toBe('valid');

    // An edit to a file others can write is not applied: the last valid manifest is kept.
    writeFileSync(file, manifestText({ d1: { layer: 'l1' }, d2: { layer: 'l1' } }));
    chmodSync(file, 0o666);
    const loose = await follower.read();
    expect(loose).toMatchObject({ kind: 'invalid', firstReport: true, error: { code: 'E_MANIFEST_UNTRUSTED', exitCode: 2 } });
    expect(loose.kind === 'invalid' && loose.kept?.devices.map((d) => d.name)).toEqual(['d1']);
    expect(loose.kind === 'invalid' && loose.error.message).toContain('others can write to it (mode 0666)');

    chmodSync(file, 0o644);
    chownSync(file, 1000, 1000);
    const theirs = await follower.read();
    expect(theirs.kind === 'invalid' && theirs.error.message).toContain('owned by uid 1000');

    chownSync(file, 0, 0);
    chmodSync(conf, 0o775);
    const dir = await follower.read();
    expect(dir.kind === 'invalid' && dir.error.message).toContain(`its directory ${conf}: its group can write to it`);

    chmodSync(conf, 0o755);
    const fixed = await follower.read();
    expect(fixed.kind === 'valid' && fixed.manifest.devices.map((d) => d.name)).toEqual(['d1', 'd2']);
  });

  it('is never read through a symlink', async () => {
    const { root, file } = confDir();
    const link = join(root, 'link.yaml');
    symlinkSync(file, link);
    const reading = await new ManifestFollower(link).read();
    expect(reading).toMatchObject({ kind: 'invalid', error: { code: 'E_MANIFEST_UNTRUSTED' } });
    expect(reading.kind === 'invalid' && reading.error.message).toContain('is a symlink');
  });
});

describe('layer sources', () => {
  it('are reported when someone but root owns or can write them', async () => {
    const { root } = confDir();
    const mine = join(root, 'mine.tar');
    const theirs = join(root, 'theirs.tar');
    const shared = join(root, 'shared');
    writeFileSync(mine, '');
    writeFileSync(theirs, '');
    chownSync(theirs, 1000, 1000);
    mkdirSync(shared);
    chmodSync(shared, 0o777);
    const m = manifest({
      layers: [
        { name: 'a', parent: null, source: mine },
        { name: 'b', parent: 'a', source: theirs },
        { name: 'c', parent: 'b', source: `oci:${shared}:latest` },
      ],
    });
    const found = await untrustedSources(m);
    expect(found.map((u) => [u.layer, u.source])).toEqual([
      ['b', theirs],
      ['c', shared],
    ]);
    expect(found[0]!.why).toContain('owned by uid 1000');
  });
});
