// The quick road (js-yaml) must read every text it accepts exactly as the yaml library does, and
// must hand every text on which they could differ to the yaml library.

import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseYamlQuickly } from '../../src/manifest/quick-yaml.ts';
import { parseYaml } from '../../src/manifest/yaml-document.ts';
import { parseManifest } from '../../src/manifest/load.ts';

/** What the yaml library makes of the text, or 'refused' when it reports a problem. */
function slowRoad(text: string): unknown {
  const parsed = parseYaml(text);
  return parsed.problems.length > 0 ? 'refused' : parsed.value;
}

const SCALARS = [
  '1',
  '-0',
  '+12',
  '007',
  '0o17',
  '0o8',
  '0x1F',
  '0X1f',
  '0b101',
  '+0x1F',
  '-0x1F',
  '1_000',
  '1,000',
  '1e3',
  '1E3',
  '1.5e+3',
  '.5',
  '-.5',
  '+.5',
  '5.',
  '.e3',
  '0.',
  '+.inf',
  '-.Inf',
  '.INF',
  '.NaN',
  '.nan',
  '-.nan',
  '12G',
  '64K',
  '10%',
  '60s',
  'yes',
  'no',
  'on',
  'off',
  'y',
  'n',
  'True',
  'TRUE',
  'tRUE',
  'false',
  'null',
  'Null',
  'NULL',
  '~',
  '',
  '2001-12-14',
  '2001-12-14T21:59:43.10-05:00',
  '1:20',
  '12:30:45',
  "'1'",
  '"x"',
  '"\\u00e9\\t"',
  "'it''s'",
  '=',
  '<<',
  '/dev/sdb',
  'a b',
  'a #b',
  '"a #b"',
  '|\n  line\n  two\n',
  '>-\n  folded\n  text\n',
  '[]',
  '{}',
  '[1, "2", three]',
  '{ a: 1, b: [x] }',
];

describe('the quick road agrees with the yaml library', () => {
  it.each(SCALARS)('value %j', (scalar) => {
    const text = `k: ${scalar}\n`;
    const quick = parseYamlQuickly(text);
    if (quick !== undefined) expect(quick).toEqual(slowRoad(text));
  });

  it('on the example manifests and every manifest the docs show', () => {
    const texts: string[] = [fs.readFileSync(path.join(import.meta.dirname, '../../examples/web.yaml'), 'utf8')];
    for (const doc of fs.readdirSync(path.join(import.meta.dirname, '../../docs'))) {
      const md = fs.readFileSync(path.join(import.meta.dirname, '../../docs', doc), 'utf8');
      for (const m of md.matchAll(/```yaml\n([\s\S]*?)```/g)) texts.push(m[1]);
    }
    expect(texts.length).toBeGreaterThan(1);
    let quickly = 0;
    for (const text of texts) {
      const quick = parseYamlQuickly(text);
      if (quick === undefined) continue;
      quickly += 1;
      expect(quick).toEqual(slowRoad(text));
    }
    expect(quickly).toBeGreaterThan(0);
  });

  it('on nested block and flow structure, comments and quoting', () => {
    const text = [
      '# a comment',
      'version: 1',
      'pool:',
      '  name: "main"   # trailing',
      '  data: { file: data.img, size: 8G }',
      '  metadata:',
      "    file: 'meta.img'",
      '    size: 256M',
      'layers:',
      '  base: {}',
      '  web:',
      '    parent: base',
      '    source: ./web.tar.zst',
      'devices:',
      '  a-1: { layer: web, state: mounted, mountpoint: /srv/a-1 }',
      '  "b 2":',
      '    layer: web',
      '    state: created',
      'list:',
      '  - one',
      '  - [two, 3]',
      '  - { four: 4.0 }',
      '  -',
      '    five: ~',
      '',
    ].join('\n');
    const quick = parseYamlQuickly(text);
    expect(quick).toBeDefined();
    expect(quick).toEqual(slowRoad(text));
  });
});

describe('the quick road hands over what it cannot vouch for', () => {
  it.each([
    ['an alias', 'a: &x 1\nb: *x\n'],
    ['a directive', '%YAML 1.1\n---\nk: yes\n'],
    ['a tag', 'k: !!str 12\n'],
    ['a custom tag', 'k: !thing 12\n'],
    ['an explicit key', '? k\n: v\n'],
    ['a collection as a key', '[a]: v\n'],
    ['a null key', 'null: v\n'],
    ['an empty key', '"": v\n: w\n'],
    ['a number as a key', '1: v\n'],
    ['a boolean as a key', 'devices:\n  true: { layer: x }\n'],
    ['a duplicate key', 'k: 1\nk: 2\n'],
    ['two documents', 'k: 1\n---\nk: 2\n'],
    ['a syntax error', 'k: [1, 2\n'],
  ])('%s', (_what, text) => {
    expect(parseYamlQuickly(text)).toBeUndefined();
  });

  it('a manifest with a problem is read again by the slow road, which names the line', () => {
    const text = 'version: 1\npool:\n  name: main\n  blockSize: 3K\n';
    expect(parseYamlQuickly(text)).toBeDefined();
    expect(() => parseManifest(text, '/tmp/m.yaml')).toThrow(/m\.yaml:4/);
  });
});
