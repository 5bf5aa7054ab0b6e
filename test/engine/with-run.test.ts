// withRun: the one place a run's bookkeeping is written (src/engine/with-run.ts).

import { describe, it, expect } from 'vitest';
import { withRun } from '../../src/engine/with-run.ts';
import { initialState } from '../../src/lifecycle/projection.ts';
import type { EngineState } from '../../src/model/engine-state.ts';
import { foldInto } from '../../src/lifecycle/fold.ts';
import type { Session } from '../../src/engine/session.ts';
import type { ThinlayerEventBody } from '../../src/model/events.ts';

/** A session that only appends and folds: what withRun uses. */
function logOnly(lastRun: EngineState['lastRun'] = null) {
  const state = { ...initialState(), lastRun };
  const events: ThinlayerEventBody[] = [];
  const session = {
    state,
    async append(bodies: ThinlayerEventBody[]) {
      for (const b of bodies) {
        events.push(b);
        foldInto(state, { ...b, seq: events.length, at: '' } as never);
      }
      return [];
    },
  } as unknown as Session;
  return { session, events, state };
}

const kinds = (events: ThinlayerEventBody[]) => events.map((e) => (e.type === 'run.finished' ? `${e.type} ${e.outcome}` : e.type));

describe('withRun', () => {
  it('writes run.started before the body and run.finished with its outcome after', async () => {
    const { session, events, state } = logOnly();
    const answer = await withRun(
      session,
      'gc',
      async (run) => {
        expect(run.started).toBe(true);
        return 'interrupted' as const;
      },
      { outcome: (v) => v },
    );
    expect(answer).toBe('interrupted');
    expect(kinds(events)).toEqual(['run.started', 'run.finished interrupted']);
    expect(events[0]).toMatchObject({ command: 'gc', pid: process.pid });
    expect(state.lastRun).toMatchObject({ command: 'gc', outcome: 'interrupted' });
  });

  it('ends a run whose body throws as failed, after its failure hook, and rethrows', async () => {
    const { session, events } = logOnly();
    const seen: string[] = [];
    await expect(
      withRun(
        session,
        'apply',
        async () => {
          throw new Error('boom');
        },
        { onFailure: async () => void seen.push('cleanup') },
      ),
    ).rejects.toThrow('boom');
    expect(seen).toEqual(['cleanup']);
    expect(kinds(events)).toEqual(['run.started', 'run.finished failed']);
  });

  it('leaves no trace of a lazy run that never started, unless it closes an unfinished one', async () => {
    const quiet = logOnly();
    await withRun(quiet.session, 'apply', async () => 'nothing to do', { lazy: true });
    expect(quiet.events).toEqual([]);

    const killed = logOnly({ runId: 'old', command: 'apply', outcome: 'running' });
    await withRun(killed.session, 'apply', async () => 'converged', { lazy: true, closeUnfinished: () => true });
    expect(kinds(killed.events)).toEqual(['run.started', 'run.finished converged']);
    expect(killed.state.lastRun).toMatchObject({ command: 'apply', outcome: 'converged' });

    const serving = logOnly({ runId: 'snap', command: 'snapshotter', outcome: 'running' });
    await withRun(serving.session, 'apply', async () => 'converged', { lazy: true, closeUnfinished: (last) => last.command !== 'snapshotter' });
    expect(serving.events).toEqual([]);
  });

  it('settles only the run a run.finished names', async () => {
    const { session, state } = logOnly();
    await session.append([{ type: 'run.started', runId: 'snap', command: 'snapshotter', pid: 1 }]);
    await session.append([{ type: 'run.started', runId: 'a', command: 'apply', pid: 2 }]);
    await session.append([{ type: 'run.finished', runId: 'snap', outcome: 'converged', steps: 0 }]);
    expect(state.lastRun).toEqual({ runId: 'a', command: 'apply', outcome: 'running' });
  });
});
