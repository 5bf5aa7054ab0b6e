import { describe, it, expect } from 'vitest';
import { pathBetween, step, accepts, initialRecord, INITIAL_LIFECYCLE } from '../../src/lifecycle/machine.ts';
import { STABLE_STATES } from '../../src/model/lifecycle-state.ts';

describe('lifecycle machine', () => {
  it('starts absent, as INITIAL_LIFECYCLE says', () => {
    expect(initialRecord()).toEqual(INITIAL_LIFECYCLE);
  });

  it.each([
    ['absent', 'mounted', ['CREATE', 'ACTIVATE', 'MOUNT']],
    ['absent', 'activated', ['CREATE', 'ACTIVATE']],
    ['mounted', 'absent', ['UNMOUNT', 'DELETE']],
    ['activated', 'absent', ['DELETE']],
    ['activated', 'created', ['DEACTIVATE']],
    ['created', 'mounted', ['ACTIVATE', 'MOUNT']],
    ['mounted', 'created', ['UNMOUNT', 'DEACTIVATE']],
    ['created', 'created', []],
  ] as const)('goes from %s to %s by %j', (from, to, path) => {
    expect(pathBetween(from, to)).toEqual(path);
  });

  it('reaches every stable state from every other', () => {
    for (const from of STABLE_STATES) for (const to of STABLE_STATES) expect(() => pathBetween(from, to)).not.toThrow();
  });

  it('passes through a transient state and lands on DONE', () => {
    const creating = step(INITIAL_LIFECYCLE, { type: 'CREATE' });
    expect(creating.state).toBe('creating');
    expect(step(creating, { type: 'DONE' }).state).toBe('created');
  });

  it('keeps the error in the failed state and remembers where it came from', () => {
    const activated = { state: 'activated', from: 'activated', error: null } as const;
    const failed = step(step(activated, { type: 'MOUNT' }), { type: 'FAIL', error: 'EBUSY' });
    expect(failed).toEqual({ state: 'failed', from: 'activated', error: 'EBUSY' });
  });

  it("leaves a failed record where it is: only the planner's observation says where the device went", () => {
    const failed = { state: 'failed', from: 'created', error: 'boom' } as const;
    for (const command of ['CREATE', 'ACTIVATE', 'MOUNT', 'UNMOUNT', 'DEACTIVATE', 'DELETE', 'DONE'] as const)
      expect(step(failed, { type: command })).toEqual(failed);
  });

  it('refuses commands that make no sense in a state', () => {
    expect(accepts({ state: 'absent', from: 'absent', error: null }, 'MOUNT')).toBe(false);
    expect(accepts({ state: 'mounted', from: 'mounted', error: null }, 'DELETE')).toBe(false);
    expect(accepts({ state: 'created', from: 'created', error: null }, 'DELETE')).toBe(true);
  });
});
