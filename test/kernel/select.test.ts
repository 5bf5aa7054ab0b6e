import { describe, expect, it } from 'vitest';
import { chooseBackend, refuseOtherBackend } from '../../src/kernel/select.ts';
import { StateError, UserError } from '../../src/errors/index.ts';

const DM_ROOT = { deviceMapper: true, root: true };
const DM_USER = { deviceMapper: true, root: false };
const NO_DM_ROOT = { deviceMapper: false, root: true };
const NO_DM_USER = { deviceMapper: false, root: false };

describe('the backend is never a surprise', () => {
  it('auto takes the real kernel wherever device-mapper is and thinlayer is root', () => {
    expect(chooseBackend('auto', DM_ROOT)).toBe('kernel');
  });

  it('auto refuses (exit 1) a host with device-mapper when not root, saying to use root or --backend sim', () => {
    const e = (() => {
      try {
        chooseBackend('auto', DM_USER);
      } catch (x) {
        return x;
      }
    })();
    expect(e).toBeInstanceOf(StateError);
    expect((e as StateError).exitCode).toBe(1);
    expect((e as StateError).message).toContain('root');
    expect((e as StateError).message).toContain('--backend sim');
  });

  it('auto takes the simulated kernel only on a host without device-mapper', () => {
    expect(chooseBackend('auto', NO_DM_ROOT)).toBe('sim');
    expect(chooseBackend('auto', NO_DM_USER)).toBe('sim');
  });

  it('sim is always the simulated kernel; kernel needs device-mapper and root', () => {
    for (const facts of [DM_ROOT, DM_USER, NO_DM_ROOT, NO_DM_USER]) expect(chooseBackend('sim', facts)).toBe('sim');
    expect(chooseBackend('kernel', DM_ROOT)).toBe('kernel');
    expect(() => chooseBackend('kernel', DM_USER)).toThrow(UserError);
    expect(() => chooseBackend('kernel', NO_DM_ROOT)).toThrow(/no device-mapper/);
  });

  it('a state dir is refused to the backend it did not record, naming the recorded one', () => {
    expect(() => refuseOtherBackend('sim', 'sim', '/s')).not.toThrow();
    expect(() => refuseOtherBackend(null, 'kernel', '/s')).not.toThrow();
    expect(() => refuseOtherBackend(undefined, 'sim', '/s')).not.toThrow();
    expect(() => refuseOtherBackend('sim', 'kernel', '/s')).toThrow(/made with the simulated kernel \(--backend sim\)/);
    expect(() => refuseOtherBackend('kernel', 'sim', '/s')).toThrow(/made with the real kernel \(--backend kernel\)/);
  });
});
