// containerd's list filter syntax, as src/snapshotter/filters.ts reads it.

import { describe, it, expect } from 'vitest';
import { compileFilters, parseFilter } from '../../src/snapshotter/filters.ts';
import { SnapshotError } from '../../src/snapshotter/errors.ts';

const snap = { kind: 'active', name: 'default/3/abc', parent: 'sha256:p', labels: { 'containerd.io/gc.root': 'x', plain: 'v' } };

describe('snapshot list filters', () => {
  it('reads selectors, quoted path parts and values, and the three operators', () => {
    expect(parseFilter('kind==active,labels."containerd.io/gc.root",name~=^default/')).toEqual([
      { path: ['kind'], op: '==', value: 'active' },
      { path: ['labels', 'containerd.io/gc.root'], op: '', value: '' },
      { path: ['name'], op: '~=', value: '^default/' },
    ]);
    expect(parseFilter('parent=="a,b"')).toEqual([{ path: ['parent'], op: '==', value: 'a,b' }]);
  });

  it('matches all selectors of one filter and any of several filters', () => {
    expect(compileFilters([])(snap)).toBe(true);
    expect(compileFilters(['kind==active,parent==sha256:p'])(snap)).toBe(true);
    expect(compileFilters(['kind==active,parent==other'])(snap)).toBe(false);
    expect(compileFilters(['kind==view', 'labels.plain==v'])(snap)).toBe(true);
    expect(compileFilters(['labels."containerd.io/gc.root"'])(snap)).toBe(true);
    expect(compileFilters(['labels.missing'])(snap)).toBe(false);
    expect(compileFilters(['labels.missing!=x'])(snap)).toBe(true); // an absent field is "" to !=, as containerd has it
    expect(compileFilters(['name~=/3/'])(snap)).toBe(true);
  });

  it('refuses what does not parse, as InvalidArgument', () => {
    for (const bad of ['kind==active,', '==x', 'labels."open']) {
      expect(() => parseFilter(bad), bad).toThrow(SnapshotError);
      try {
        parseFilter(bad);
      } catch (e) {
        expect((e as SnapshotError).kind).toBe('invalid-argument');
      }
    }
  });

  it('refuses a pattern RE2 does not accept as InvalidArgument, before matching anything', () => {
    for (const bad of ['name~=[', 'name~=(a', 'name~=a**', 'name~=(?<=a)b']) {
      let caught: unknown = null;
      try {
        compileFilters([bad]);
      } catch (e) {
        caught = e;
      }
      expect(caught, bad).toBeInstanceOf(SnapshotError);
      expect((caught as SnapshotError).kind, bad).toBe('invalid-argument');
    }
  });

  it('matches a catastrophic-backtracking pattern in linear time, with RE2 semantics', () => {
    const key = `${'a'.repeat(34)}!`;
    const evil = compileFilters(['name~=^(a+)+$']);
    // A backtracking engine takes 2^34 steps here; RE2 answers at once (vitest's timeout is the bound).
    expect(evil({ ...snap, name: key })).toBe(false);
    expect(evil({ ...snap, name: 'a'.repeat(100_000) })).toBe(true);
    expect(compileFilters(['name~=^default/[0-9]+/'])(snap)).toBe(true);
    expect(compileFilters(['labels.plain~=^v$'])(snap)).toBe(true);
    expect(compileFilters(['labels.absent~=.*'])(snap)).toBe(false);
  });
});
