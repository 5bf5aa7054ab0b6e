import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors/index.ts';
import { formatSize, parseSize, readSize } from '../../src/manifest/sizes.ts';

const K = 1024;
const M = K * 1024;
const G = M * 1024;
const T = G * 1024;

describe('parseSize', () => {
  it.each([
    ['100G', 100 * G],
    ['2G', 2 * G],
    ['64K', 64 * K],
    ['512M', 512 * M],
    ['1T', T],
    ['10GiB', 10 * G],
    ['10Gi', 10 * G],
    ['1.5G', 1.5 * G],
    ['.5K', 512],
    ['64k', 64 * K],
    ['4096', 4096],
    ['512B', 512],
    [' 10 G ', 10 * G],
    ['8P', 2 ** 53],
    [4096, 4096],
    [0, 0],
  ] as const)('reads %j as %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each([
    ['-1G', 'negative'],
    [-5, 'negative'],
    ['', 'a size such as'],
    ['ten', 'a size such as'],
    ['10X', 'a size such as'],
    ['1e3', 'a size such as'],
    ['10GB', 'could be decimal or binary; write 10G or 10GiB'],
    ['1.1K', 'whole number of bytes'],
    [1.5, 'whole number of bytes'],
    ['9P', 'largest size'],
    [2 ** 53 + 2, 'largest size'],
    [Number.NaN, 'a size such as'],
    [Number.POSITIVE_INFINITY, 'a size such as'],
  ] as const)('refuses %j (%s)', (text, fragment) => {
    const reading = readSize(text);
    expect(reading.ok).toBe(false);
    expect(reading.ok ? '' : reading.reason).toContain(fragment);
    expect(() => parseSize(text)).toThrow(UserError);
  });

  it('throws a UserError that names the value and says what a size looks like', () => {
    const error = (() => {
      try {
        parseSize('lots');
      } catch (e) {
        return e as UserError;
      }
    })();
    expect(error).toBeInstanceOf(UserError);
    expect(error?.exitCode).toBe(2);
    expect(error?.message).toContain('"lots"');
    expect(error?.detail.expected).toContain('10G');
  });
});

describe('formatSize', () => {
  it.each([
    [100 * G, '100 GiB'],
    [64 * K, '64 KiB'],
    [1.5 * G, '1.5 GiB'],
    [1025 * M, '1025 MiB'],
    [T, '1 TiB'],
    [512, '512'],
    [0, '0'],
    [G + 512, String(G + 512)],
    [1.125 * M, '1.125 MiB'],
  ])('shows %d bytes as %s', (bytes, text) => {
    expect(formatSize(bytes)).toBe(text);
  });

  it('reads back exactly what it shows', () => {
    // A fixed pseudo-random sequence keeps the test repeatable while covering odd sizes.
    let seed = 12345;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31);
    const samples = [1, 1023, 1024, 1536, 2 ** 53, 2 ** 40 + 2 ** 30, 3 * 2 ** 29];
    for (let i = 0; i < 500; i++) samples.push(next() * (1 + (next() % 4096)), (next() % 100_000) * 512, (next() % 8192) * 64 * K);
    for (const bytes of samples) expect(parseSize(formatSize(bytes))).toBe(bytes);
  });
});
