// A state dir records the backend it was first changed with, together with its identity, and is
// refused (exit 1, naming the recorded backend) to a command on the other one: a simulated apply
// on a state dir of real devices would report "Converged" with nothing real made.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it, onTestFinished } from 'vitest';
import * as api from '../../src/api/index.ts';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import type { KernelPort } from '../../src/kernel/kernel-port.ts';
import { sandbox, webManifest } from './cli-harness.ts';
import { withoutDevices } from '../builders/manifest.ts';

function box() {
  const b = sandbox();
  onTestFinished(() => b.cleanup());
  return b;
}

/** A kernel that says it is the real one (the simulator underneath, in a directory of its own). */
function claimsReal(dir: string): KernelPort {
  const sim = new SimKernel({ dir });
  return new Proxy(sim, {
    get: (t, p, r) => (p === 'kind' ? 'kernel' : typeof Reflect.get(t, p, r) === 'function' ? Reflect.get(t, p, r).bind(t) : Reflect.get(t, p, r)),
  }) as KernelPort;
}

describe('the backend a state dir records', () => {
  it('is recorded with the identity by the first change', () => {
    const b = box();
    const file = b.writeManifest('web.yaml', webManifest(b.mnt));
    expect(b.run(['apply', '-f', file, '--yes']).code).toBe(0);
    const events = readFileSync(join(b.stateDir, 'events.ndjson'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(events.slice(0, 2).map((e) => [e.seq, e.type, e.backend])).toEqual([
      [1, 'state.identity', undefined],
      [2, 'state.backend', 'sim'],
    ]);
  });

  it('refuses every command on the other backend, naming the recorded one, before the simulator starts', async () => {
    const b = box();
    const file = b.writeManifest('web.yaml', withoutDevices(webManifest(b.mnt), 'web1'));
    const kernel = claimsReal(join(b.root, 'real'));
    await api.apply(file, { stateDir: b.stateDir, kernel, yes: true });
    await kernel.close();
    for (const args of [['apply', '-f', file, '--yes'], ['plan', '-f', file], ['status'], ['up'], ['doctor']]) {
      const r = b.run(args);
      expect(r.code, `${args[0]}: ${r.stderr}`).toBe(1);
      expect(r.stderr).toContain('was made with the real kernel (--backend kernel)');
      expect(r.stderr).not.toMatch(/internal error/);
    }
    expect(existsSync(join(b.stateDir, 'sim'))).toBe(false);
  });
});
