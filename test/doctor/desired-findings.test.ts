// doctor's findings about the desired state: `drift` (an error) for each thing that is not what the
// recorded manifest says, and `run.interrupted` (a warning) for a run that never finished. Pure.

import { describe, it, expect } from 'vitest';
import { driftFindings, interruptedRunFindings } from '../../src/doctor/desired-findings.ts';
import { diagnose } from '../../src/doctor/diagnose.ts';
import { baseState, facts, layer, layerKey, manifest, thing, OS } from './fixtures.ts';

describe('drift', () => {
  it('finds nothing when everything is what the manifest says', () => {
    expect(driftFindings(facts())).toEqual([]);
    expect(diagnose(facts(), '/state').exitCode).toBe(0);
  });

  it('reports a wanted device that was never made, as an error naming it', () => {
    const state = baseState();
    delete state.things['device:web'];
    const f = facts({ state, live: {}, thinIds: [0, 1] });
    expect(driftFindings(f)).toEqual([
      {
        code: 'drift',
        severity: 'error',
        subject: 'device:web',
        message: 'device web is absent, desired activated: the desired state is not reached',
        repair: 'thinlayer apply -f MANIFEST',
      },
    ]);
    expect(diagnose(f, '/state').exitCode).toBe(1);
  });

  it('reports a device that is a snapshot of another layer than the desired one, and a thing no longer wanted', () => {
    const APP = layerKey('os', 'app');
    const desired = manifest(['os', 'app'], [{ name: 'web', layer: 'app' }]);
    const state = baseState({ desired, poolSpec: desired.pool });
    state.things[APP] = layer(['os', 'app'], 3);
    state.things['device:web'] = thing('device:web', 2, OS, 'activated', { layer: 'os' });
    state.things['device:old'] = thing('device:old', 4, OS, 'created', { layer: 'os' });
    const found = driftFindings(facts({ state, thinIds: [0, 1, 2, 3, 4] }));
    expect(found.map((f) => [f.subject, f.message])).toEqual([
      ['device:old', 'device old (thin id 4) is no longer in the manifest, desired deleted: the desired state is not reached'],
      ['device:web', 'device web is a snapshot of layer os, desired a snapshot of layer app: the desired state is not reached'],
    ]);
  });

  it('says nothing while a run holds the lock, and expects inactive devices after down', () => {
    const state = baseState();
    delete state.things['device:web'];
    expect(driftFindings({ ...facts({ state, live: {} }), runInProgress: { pid: 1, command: 'apply' } })).toEqual([]);
    const down = baseState({ lastRun: { runId: 'r', command: 'down', outcome: 'converged' } });
    down.things['device:web'] = thing('device:web', 2, OS, 'created');
    expect(driftFindings(facts({ state: down, live: {} }))).toEqual([]);
  });
});

describe('run.interrupted', () => {
  it('warns of a run that never finished or was interrupted, naming the command to run again', () => {
    const killed = facts({ state: baseState({ lastRun: { runId: 'r1', command: 'apply', outcome: 'running' } }) });
    expect(interruptedRunFindings(killed)).toEqual([
      {
        code: 'run.interrupted',
        severity: 'warning',
        subject: 'log',
        message: 'thinlayer apply (run r1) started and never finished: it was killed or crashed; its work may be half done',
        repair: 'thinlayer apply -f MANIFEST (the same command again finishes it)',
      },
    ]);
    const stopped = facts({ state: baseState({ lastRun: { runId: 'r2', command: 'destroy', outcome: 'interrupted' } }) });
    expect(interruptedRunFindings(stopped)).toMatchObject([
      { severity: 'warning', message: expect.stringMatching(/was interrupted/), repair: expect.stringMatching(/^thinlayer destroy /) },
    ]);
  });

  it('says nothing of a run that ended, or of one under way', () => {
    expect(interruptedRunFindings(facts({ state: baseState({ lastRun: { runId: 'r', command: 'apply', outcome: 'converged' } }) }))).toEqual([]);
    expect(
      interruptedRunFindings({
        ...facts({ state: baseState({ lastRun: { runId: 'r', command: 'apply', outcome: 'running' } }) }),
        runInProgress: { pid: 1, command: 'apply' },
      }),
    ).toEqual([]);
  });

  it('says nothing of the run of a snapshotter that serves, and warns of one whose snapshotter is gone', () => {
    const serving = baseState({ lastRun: { runId: 's1', command: 'snapshotter', outcome: 'running' } });
    expect(interruptedRunFindings({ ...facts({ state: serving }), liveHolders: ['snapshotter'] })).toEqual([]);
    expect(interruptedRunFindings({ ...facts({ state: serving }), liveHolders: [] })).toMatchObject([
      { code: 'run.interrupted', severity: 'warning', message: expect.stringMatching(/^thinlayer snapshotter \(run s1\) started and never finished/) },
    ]);
    // A live snapshotter says nothing of another command's run left unfinished.
    const killedApply = baseState({ lastRun: { runId: 'a1', command: 'apply', outcome: 'running' } });
    expect(interruptedRunFindings({ ...facts({ state: killedApply }), liveHolders: ['snapshotter'] })).toHaveLength(1);
  });
});
