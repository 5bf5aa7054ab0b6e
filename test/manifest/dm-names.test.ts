import { describe, expect, it } from 'vitest';
import { validateDmName, validatePoolName } from '../../src/manifest/dm-names.ts';

describe('validateDmName', () => {
  it.each(['web1', 'fedora-39', 'a.b', 'x_y', 'Été', 'a'.repeat(127), 'é'.repeat(63)])('accepts %j', (name) => {
    expect(validateDmName(name)).toBeNull();
  });

  it.each([
    ['', 'empty'],
    ['.', '"."'],
    ['..', '".."'],
    ['a/b', "'/'"],
    ['a b', 'whitespace'],
    ['a\tb', 'whitespace'],
    ['a\u00a0b', 'whitespace'],
    ['a\u0001b', 'control'],
    ['a\u007fb', 'control'],
    ['a'.repeat(128), 'at most 127 bytes'],
    ['é'.repeat(64), 'at most 127 bytes long, this one is 128'],
    ['web\u200b1', 'invisible or bidirectional formatting characters, here U+200B'],
    ['web\u202e1', 'invisible or bidirectional formatting characters, here U+202E'],
    ['a\u00adb', 'invisible or bidirectional formatting characters, here U+00AD'],
    ['a\u2028b', 'whitespace, here U+2028'],
    ['a\u2029b', 'whitespace, here U+2029'],
    ['__proto__', 'a name JavaScript objects reserve'],
    ['constructor', 'a name JavaScript objects reserve'],
    ['hasOwnProperty', 'a name JavaScript objects reserve'],
  ])('refuses %j (%s)', (name, fragment) => {
    expect(validateDmName(name)).toContain(fragment);
  });
});

describe('validatePoolName', () => {
  it('allows 64 bytes and no more, since it prefixes every device name', () => {
    expect(validatePoolName('p'.repeat(64))).toBeNull();
    expect(validatePoolName('p'.repeat(65))).toContain('at most 64 bytes');
    expect(validatePoolName('a/b')).toContain("'/'");
  });
});
