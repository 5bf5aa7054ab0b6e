// The events of one step, built typed by its op: the intent written before the kernel is touched
// and the outcome written after it (the event types are src/model/events.ts).

import type { StepIntentEvent, StepIntentOf, StepDoneEvent, StepDoneOf } from '../model/events.ts';
import type { StepOp, StepArgs, StepResult } from '../model/step-contract.ts';

/** The intent of one step, typed by its op. */
export function intentEvent<O extends StepOp>(op: O, stepId: string, target: string, args: StepArgs<O>, txid?: number): StepIntentEvent {
  const intent: StepIntentOf<O> = { type: 'step.intent', stepId, op, target, args, ...(txid !== undefined ? { txid } : {}) };
  return intent as StepIntentEvent;
}

/** The outcome of one step, typed by its op. */
export function doneEvent<O extends StepOp>(op: O, stepId: string, target: string, result: StepResult<O>, recovered = false): StepDoneEvent {
  const done: StepDoneOf<O> = { type: 'step.done', stepId, op, target, result, ...(recovered ? { recovered: true } : {}) };
  return done as StepDoneEvent;
}
