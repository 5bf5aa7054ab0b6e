import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../src/manifest/load.ts';
import { ManifestError } from '../../src/manifest/manifest-error.ts';
import { dmIdentity } from '../../src/domain/names.ts';

function refusal(text: string): ManifestError {
  try {
    parseManifest(text, 'm.yaml');
  } catch (e) {
    if (e instanceof ManifestError) return e;
    throw e;
  }
  throw new Error('the manifest was accepted');
}

describe('device-mapper names apart', () => {
  // A long name is shortened to a head and a digest; a second name can be written as that very text.
  const long = 'a'.repeat(120);
  const shortened = dmIdentity('demo', 'device', long).dmName;
  const lookalike = shortened.slice('thinlayer-demo-dev-'.length);

  it('the two names really meet on one dm name', () => {
    expect(lookalike).not.toBe(long);
    expect(dmIdentity('demo', 'device', lookalike).dmName).toBe(shortened);
  });

  it('refuses two devices whose shortened dm names are equal, naming both', () => {
    const e = refusal(`pool: { name: demo }\nlayers: { l: {} }\ndevices:\n  ${long}: { layer: l }\n  ${lookalike}: { layer: l }\n`);
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain(`devices.${lookalike}`);
    expect(e.message).toContain(`devices.${long}`);
    expect(e.message).toContain(shortened);
  });

  it("refuses a layer whose dm name is another layer's", () => {
    const layerLong = 'b'.repeat(125);
    const layerShort = dmIdentity('demo', 'layer', layerLong).dmName.slice('thinlayer-demo-layer-'.length);
    const e = refusal(`pool: { name: demo }\nlayers:\n  ${layerLong}: {}\n  ${layerShort}: {}\n`);
    expect(e.message).toContain('shortened device-mapper name');
  });

  it('accepts long names that stay apart', () => {
    const m = parseManifest(
      `pool: { name: demo }\nlayers: { l: {} }\ndevices:\n  ${'a'.repeat(120)}: { layer: l }\n  ${'a'.repeat(121)}: { layer: l }\n`,
      'm.yaml',
    );
    expect(m.devices).toHaveLength(2);
  });
});

describe('names people can read', () => {
  it.each([
    ['a zero-width space', 'web\u200b1', 'U+200B'],
    ['a right-to-left override', 'web\u202e1', 'U+202E'],
    ['a line separator', 'web\u20281', 'U+2028'],
    ['a paragraph separator', 'web\u20291', 'U+2029'],
  ])('refuses a device name with %s', (_what, name, code) => {
    const e = refusal(`pool: { name: demo }\nlayers: { l: {} }\ndevices:\n  "${name}": { layer: l }\n`);
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain(code);
  });

  it.each(['__proto__', 'constructor', 'toString'])('refuses the layer name %s with a user error', (name) => {
    const e = refusal(`pool: { name: demo }\nlayers:\n  ${name}: {}\ndevices:\n  web: { layer: ${name} }\n`);
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain('a name JavaScript objects reserve');
  });
});
