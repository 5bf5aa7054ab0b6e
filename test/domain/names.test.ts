import { describe, it, expect } from 'vitest';
import { dmIdentity, legacyIdentity, identityOfUuid, newIdentity, isIdentity } from '../../src/domain/names.ts';
import { ownershipJudge, poolIdentityOf } from '../../src/domain/ownership.ts';

const ID = 'a'.repeat(32);

describe('dm names and uuids', () => {
  it("pools of different names never share a dm name: pool a-dev's base is not pool a's device base", () => {
    expect(dmIdentity('a-dev', 'base').dmName).not.toBe(dmIdentity('a', 'device', 'base').dmName);
    expect(dmIdentity('a-dev', 'base').dmName).toBe('thinlayer-a--dev-base');
    expect(dmIdentity('a', 'device', 'base').dmName).toBe('thinlayer-a-dev-base');
    // The releases before identities did give them one name.
    expect(legacyIdentity('a-dev', 'base').dmName).toBe(legacyIdentity('a', 'device', 'base').dmName);
    const names = new Set<string>();
    for (const pool of ['a', 'a-', '-a', 'a-dev', 'a--dev', 'a-dev-x'])
      for (const [kind, name] of [['base'], ['pool'], ['device', 'x'], ['device', 'dev-x'], ['layer', 'x']] as const)
        names.add(dmIdentity(pool, kind, name).dmName);
    expect(names.size).toBe(6 * 5);
  });

  it("every uuid carries the state dir's identity, and two identities never give one uuid", () => {
    const other = 'b'.repeat(32);
    const mine = dmIdentity('demo', 'device', 'web', ID);
    expect(mine.uuid).toBe(`thinlayer-${ID}-demo-dev-web`);
    expect(identityOfUuid(mine.uuid)).toBe(ID);
    expect(dmIdentity('demo', 'device', 'web', other).uuid).not.toBe(mine.uuid);
    expect(dmIdentity('demo', 'device', 'web', other).dmName).toBe(mine.dmName);
    expect(identityOfUuid('thinlayer-demo-dev-web')).toBeNull();
    const long = dmIdentity('p'.repeat(64), 'layer', 'l'.repeat(100), ID);
    expect(Buffer.byteLength(long.uuid)).toBeLessThanOrEqual(128);
    expect(identityOfUuid(long.uuid)).toBe(ID);
  });

  it('new identities are 128 random bits', () => {
    const a = newIdentity();
    expect(isIdentity(a)).toBe(true);
    expect(newIdentity()).not.toBe(a);
  });
});

describe('ownership', () => {
  const state = {
    identity: ID,
    pool: { name: 'demo', dmName: 'thinlayer-demo-pool', uuid: `thinlayer-${ID}-demo-pool` },
    things: { 'device:old': { dmName: 'thinlayer-demo-dev-old', uuid: 'thinlayer-demo-dev-old' } },
  };
  const judge = ownershipJudge(state);

  it('is an exact match with the recorded uuid, never a prefix', () => {
    expect(judge({ name: 'thinlayer-demo-pool', uuid: `thinlayer-${ID}-demo-pool` })).toBe('recorded');
    expect(judge({ name: 'thinlayer-demo-pool', uuid: `thinlayer-${'b'.repeat(32)}-demo-pool` })).toBe('foreign');
    expect(judge({ name: 'thinlayer-demo-pool', uuid: 'thinlayer-demo-pool' })).toBe('foreign');
    // A recorded uuid of the release before identities is ours by exact match too.
    expect(judge({ name: 'thinlayer-demo-dev-old', uuid: 'thinlayer-demo-dev-old' })).toBe('recorded');
    expect(judge({ name: 'thinlayer-demo-dev-old', uuid: 'thinlayer-demo-dev-old-x' })).toBe('foreign');
  });

  it('a device the log does not record is ours only when it carries our identity', () => {
    expect(judge({ name: 'thinlayer-demo-dev-new', uuid: `thinlayer-${ID}-demo-dev-new` })).toBe('identity');
    expect(judge({ name: 'thinlayer-demo-dev-new', uuid: 'thinlayer-demo-dev-new' })).toBe('foreign');
    expect(ownershipJudge({ ...state, identity: null })({ name: 'x', uuid: `thinlayer-${ID}-demo-dev-new` })).toBe('foreign');
  });

  it('the pool keeps the name and uuid the log recorded for it', () => {
    const legacy = { identity: ID, pool: { name: 'a-dev', dmName: 'thinlayer-a-dev-pool', uuid: 'thinlayer-a-dev-pool' } };
    expect(poolIdentityOf(legacy, 'a-dev')).toEqual({ dmName: 'thinlayer-a-dev-pool', uuid: 'thinlayer-a-dev-pool' });
    expect(poolIdentityOf(legacy, 'b')).toEqual({ dmName: 'thinlayer-b-pool', uuid: `thinlayer-${ID}-b-pool` });
  });
});
