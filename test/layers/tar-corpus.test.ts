// The corpus the tar suite sets the reader and two libraries on (bench/tar-parsers.ts): thinlayer's
// reader must refuse or read exactly each archive, because docs/layers.md keeps it on that ground.

import { describe, expect, it } from 'vitest';
import { CORPUS, judge, thinlayerReader } from '../../bench/tar-parsers.ts';

describe('the tar corpus', () => {
  it.each(CORPUS.map((c) => [c.name, c] as const))('readTar gets "%s" right', async (_, c) => {
    const j = await judge(thinlayerReader, c);
    expect(j.verdict).toBe(c.expect === 'refuse' ? 'refused' : 'read right');
  });
});
