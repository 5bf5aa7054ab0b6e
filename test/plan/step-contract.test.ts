// The step contract is checked by the compiler: `npm run typecheck` (tsc over src and test) fails if
// any line marked @ts-expect-error below compiles, so each one is a claim that tsc refuses it. The
// runtime assertions hold the same table and union together at run time.

import { describe, it, expect, expectTypeOf } from 'vitest';
import { ACTIONS } from '../../src/actions/action-table.ts';
import type { ActionTable } from '../../src/actions/action-context.ts';
import { makeStep, type Step, type StepArgs, type StepResult, type StepContract } from '../../src/model/step-contract.ts';
import { intentEvent, doneEvent } from '../../src/events/step-events.ts';
import type { StepIntentEvent } from '../../src/model/events.ts';
import { StepWriter } from '../../src/plan/step-writer.ts';
import { OPS, NO_FOLD, type OpTable } from '../../src/lifecycle/op-table.ts';

const thin = { dmName: 'thinlayer-demo-device-web', uuid: 'thinlayer-demo-device-web', thinId: 3, sizeBytes: 1 << 30 };

describe('the typed step contract', () => {
  it('refuses a misspelled or missing argument, in a step, an intent and the step writer', () => {
    const ok: Step = { op: 'thin.activate', target: 'device:web', impact: 'update', args: thin, reason: 'activate' };
    const misspelled: Step = {
      op: 'thin.activate',
      target: 'device:web',
      impact: 'update',
      // @ts-expect-error dmNam is not an argument of thin.activate
      args: { dmNam: thin.dmName, uuid: thin.uuid, thinId: thin.thinId, sizeBytes: thin.sizeBytes },
      reason: 'activate',
    };
    // @ts-expect-error thin.delete needs discard
    makeStep('thin.delete', 'device:web', 'destroy', thin, 'delete');
    // @ts-expect-error an intent's args are its op's
    intentEvent('fs.mount', 'r:1', 'device:web', { dmName: thin.dmName, mountPoint: '/srv/web', filesystem: 'ext4', readOnly: false });
    // @ts-expect-error a result is its op's too
    doneEvent('thin.create', 'r:1', 'base', { txId: 1 });
    // @ts-expect-error the step writer checks its args against the op
    new StepWriter('ext4', new Map()).add('fs.mkfs', 'base', 'create', { dmName: thin.dmName, fileSystem: 'ext4' }, 'mkfs');
    // @ts-expect-error an op that does not exist
    makeStep('thin.resize', 'device:web', 'update', thin, 'resize');
    expect([ok.op, misspelled.op]).toEqual(['thin.activate', 'thin.activate']);
  });

  it("refuses an action table that lacks an op, or an action whose types are not its op's", () => {
    const { 'fs.mkfs': _mkfs, ...withoutMkfs } = ACTIONS;
    // @ts-expect-error fs.mkfs has no action
    const incomplete: ActionTable = withoutMkfs;
    const wrong = {
      ...ACTIONS,
      // @ts-expect-error thin.create answers its new transaction id
      async 'thin.create'() {
        return { txId: 1 };
      },
    } satisfies ActionTable;
    expect(Object.keys(incomplete)).not.toContain('fs.mkfs');
    expect(typeof wrong['thin.create']).toBe('function');
  });

  it('refuses an op table that lacks an op, its fold, its lifecycle command or its metadata flag', () => {
    const { 'thin.activate': _activate, ...withoutActivate } = OPS;
    // @ts-expect-error thin.activate has no entry: no fold, no command, no metadata flag
    const incomplete: OpTable = withoutActivate;
    const { done: _done, ...activateWithoutDone } = OPS['thin.activate'];
    // @ts-expect-error an entry says what its outcome teaches the projection (NO_FOLD when nothing)
    const noDone: OpTable = { ...OPS, 'thin.activate': activateWithoutDone };
    const { command: _command, ...activateWithoutCommand } = OPS['thin.activate'];
    // @ts-expect-error an entry names its lifecycle command (null when it has none)
    const noCommand: OpTable = { ...OPS, 'thin.activate': activateWithoutCommand };
    const { metadata: _metadata, ...deleteWithoutMetadata } = OPS['thin.delete'];
    // @ts-expect-error an entry says whether it changes the pool's metadata
    const noMetadata: OpTable = { ...OPS, 'thin.delete': deleteWithoutMetadata };
    const wrongFold = {
      ...OPS,
      'fs.mount': {
        ...OPS['fs.mount'],
        // @ts-expect-error a fold takes its own op's outcome: fs.mount's result has a mountpoint, not a size
        done: (_s, e) => void e.result.sizeBytes,
      },
    } satisfies OpTable;
    expect(Object.keys(incomplete)).not.toContain('thin.activate');
    expect([noDone, noCommand, noMetadata, wrongFold].every((t) => Object.keys(t).length === Object.keys(OPS).length)).toBe(true);
  });

  it('gives every op its entry at run time, with the lifecycle commands and metadata fences the log has always had', () => {
    const table: Record<keyof StepContract, unknown> = OPS;
    expect(Object.keys(table).sort()).toEqual(Object.keys(ACTIONS).sort());
    const commands = Object.fromEntries(
      Object.entries(OPS)
        .filter(([, o]) => o.command !== null)
        .map(([op, o]) => [op, o.command]),
    );
    expect(commands).toEqual({
      'thin.create': 'CREATE',
      'snap.create': 'CREATE',
      'thin.activate': 'ACTIVATE',
      'fs.mount': 'MOUNT',
      'fs.unmount': 'UNMOUNT',
      'thin.deactivate': 'DEACTIVATE',
      'thin.delete': 'DELETE',
    });
    expect(
      Object.keys(OPS)
        .filter((op) => OPS[op as keyof typeof OPS].metadata)
        .sort(),
    ).toEqual(['orphan.delete', 'snap.create', 'thin.create', 'thin.delete']);
    // An op with a lifecycle command moves its device's lifecycle at its intent, outcome and failure.
    for (const o of Object.values(OPS) as OpTable[keyof OpTable][]) if (o.command !== null) expect([o.intent, o.done, o.failed]).not.toContain(NO_FOLD);
  });

  it('narrows an intent by its op, and gives each op its own args and result', () => {
    expectTypeOf<StepArgs<'snap.create'>>().toHaveProperty('originThinId').toEqualTypeOf<number>();
    expectTypeOf<StepResult<'pool.grow'>>().toHaveProperty('reloaded').toEqualTypeOf<boolean>();
    const intent: StepIntentEvent = intentEvent('orphan.delete', 'r:1', 'thin:9', { thinId: 9 }, 4);
    if (intent.op === 'orphan.delete') expectTypeOf(intent.args).toEqualTypeOf<{ thinId: number; named?: boolean }>();
    expect(intent).toEqual({ type: 'step.intent', stepId: 'r:1', op: 'orphan.delete', target: 'thin:9', args: { thinId: 9 }, txid: 4 });
  });

  it('has an action for every op at run time as well', () => {
    const table: Record<keyof StepContract, unknown> = ACTIONS;
    for (const action of Object.values(table)) expect(typeof action).toBe('function');
    expect(Object.keys(ACTIONS).sort()).toEqual([
      'fs.grow',
      'fs.mkfs',
      'fs.mount',
      'fs.unmount',
      'layer.adopt',
      'layer.commit',
      'orphan.delete',
      'pool.activate',
      'pool.attach',
      'pool.deactivate',
      'pool.delete-files',
      'pool.detach',
      'pool.files',
      'pool.grow',
      'snap.create',
      'thin.activate',
      'thin.create',
      'thin.deactivate',
      'thin.delete',
      'thin.resize',
    ]);
  });
});
