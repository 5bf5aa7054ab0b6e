// The crash walk: for every k, `thinlayer apply` of the example manifest is killed with SIGKILL at
// the k-th boundary around a kernel mutation or event append (THINLAYER_CRASH_POINT=k). After each
// crash, apply must converge, a further apply must be a no-op, no thin id may be leaked, and data
// written before the crash must still be there.

import { describe, it, expect } from 'vitest';
import { writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sandbox, webManifest } from './cli-harness.ts';
import * as api from '../../src/api/index.ts';
import { poolThinIds } from './pool-thin-ids.ts';

/** The walk's bound: the example apply passes far fewer boundaries than this; reaching it is a failure. */
const MAX_POINTS = 400;

async function ownedThinIds(stateDir: string): Promise<number[]> {
  const s = await api.Session.open({ stateDir, backend: 'sim', reporter: { notify() {} }, mutate: false, command: 'check' });
  try {
    return Object.values(s.state.things).map((t) => t.thinId).sort((a, b) => a - b);
  } finally {
    await s.close();
  }
}

/** Recovery runs in this process through the library API (the same code the CLI runs): only the
 *  crashing run needs a process of its own, to be killed. */
async function checkConverged(box: ReturnType<typeof sandbox>, file: string, k: number) {
  const opts = { stateDir: box.stateDir, backend: 'sim' as const, yes: true };
  const recovered = await api.apply(file, opts).catch((e) => {
    throw new Error(`apply after crash point ${k} failed: ${e.message}`);
  });
  expect(recovered.outcome).toBe('converged');
  expect((await api.planFor(file, opts)).steps, `plan after recovery from crash point ${k}`).toEqual([]);
  const status = await api.status(opts);
  for (const d of status.devices) expect(d.state, `device ${d.name} after crash point ${k}`).toBe(d.desired);
  expect(await poolThinIds(box.stateDir), `thin ids in the pool after crash point ${k}`).toEqual(await ownedThinIds(box.stateDir));
}

describe('crash walk', () => {
  it('recovers from a SIGKILL at every boundary of a first apply of the example manifest', { timeout: 1_800_000 }, async () => {
    let k = 1;
    for (; k <= MAX_POINTS; k++) {
      // A fresh state dir and mountpoints for each k: nothing of one crash leaks into the next.
      const box = sandbox();
      try {
        const file = box.writeManifest('web.yaml', webManifest(box.mnt));
        const crashed = box.run(['apply', '-f', file, '--yes', '-q'], { THINLAYER_CRASH_POINT: String(k) });
        if (crashed.signal !== 'SIGKILL') {
          // Past the last boundary: the run completed without reaching k.
          expect(crashed.code, crashed.stderr).toBe(0);
          break;
        }
        await checkConverged(box, file, k);
      } finally {
        box.cleanup();
      }
    }
    expect(k).toBeGreaterThan(20);
    expect(k).toBeLessThan(MAX_POINTS);
  });

  it('keeps data written before a crash while the manifest drops one device and adds another', { timeout: 1_800_000 }, async () => {
    let k = 1;
    for (; k <= MAX_POINTS; k++) {
      const box = sandbox();
      try {
        const first = box.writeManifest('web.yaml', webManifest(box.mnt));
        const second = box.writeManifest(
          'changed.yaml',
          webManifest(box.mnt).replace(/^  web2:.*\n/m, '') + `  web3: { layer: fedora, state: mounted, mountpoint: ${box.mnt}/web3 }\n`,
        );
        await api.apply(first, { stateDir: box.stateDir, backend: 'sim', yes: true });
        writeFileSync(join(box.mnt, 'web1', 'committed.txt'), `written before crash point ${k}\n`);
        const crashed = box.run(['apply', '-f', second, '--yes', '-q'], { THINLAYER_CRASH_POINT: String(k) });
        if (crashed.signal !== 'SIGKILL') {
          expect(crashed.code, crashed.stderr).toBe(0);
          break;
        }
        await checkConverged(box, second, k);
        expect(readFileSync(join(box.mnt, 'web1', 'committed.txt'), 'utf8')).toBe(`written before crash point ${k}\n`);
      } finally {
        box.cleanup();
      }
    }
    expect(k).toBeGreaterThan(10);
    expect(k).toBeLessThan(MAX_POINTS);
  });
});
