import { describe, expect, it } from 'vitest';
import { describeCycle, findCycles, parentsFirst } from '../../src/manifest/layer-order.ts';

const links = (...pairs: [string, string | null][]) => pairs.map(([name, parent]) => ({ name, parent }));

describe('parentsFirst', () => {
  it('puts every parent before its children and keeps the given order otherwise', () => {
    const ordered = parentsFirst(links(['app', 'runtime'], ['other', null], ['runtime', 'os'], ['os', null], ['tool', 'os']));
    expect(ordered.map((l) => l.name)).toEqual(['os', 'runtime', 'app', 'other', 'tool']);
  });

  it('leaves an already ordered list as it is', () => {
    const given = links(['a', null], ['b', 'a'], ['c', 'b'], ['d', 'a']);
    expect(parentsFirst(given)).toEqual(given);
  });
});

describe('findCycles', () => {
  it('finds none in a forest', () => {
    expect(findCycles(links(['a', null], ['b', 'a'], ['c', 'missing']))).toEqual([]);
  });

  it('names each cycle once, from its first member in the given order', () => {
    const cycles = findCycles(links(['x', null], ['c', 'a'], ['a', 'b'], ['b', 'c'], ['self', 'self'], ['tail', 'a']));
    expect(cycles).toEqual([['c', 'a', 'b'], ['self']]);
    expect(cycles.map(describeCycle)).toEqual(['c -> a -> b -> c', 'self -> self']);
  });
});
