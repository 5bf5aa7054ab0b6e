// `thinlayer events [--follow] [--since SEQ|TIME]`: the event log, one event a line (--json: as recorded).

import type { CommandContext } from '../command-context.ts';
import { UserError } from '../../errors/index.ts';
import { renderEvent, TargetNames } from '../render.ts';
import type { Since } from '../../app/read-events.ts';

export type { Since };

/** Where `events --since` starts: after a sequence number, or at a time. */
export function parseSince(text: string | undefined): Since {
  if (text === undefined) return { seq: 0 };
  if (/^\d+$/.test(text)) return { seq: Number(text) };
  // A time must look like one (ISO 8601: a date, optionally a time): Date.parse alone takes "1" or "May".
  const time = /^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text) ? Date.parse(text) : NaN;
  if (Number.isNaN(time)) {
    throw new UserError(
      `--since ${JSON.stringify(text)} is neither a sequence number nor a time`,
      { path: '--since', expected: 'a sequence number such as 120, or a time such as 2026-12-01T10:00:00Z' },
      'E_USAGE',
    );
  }
  return { time };
}

export async function run({ io, json, o, stateDir }: CommandContext): Promise<number> {
  const since = parseSince(o.since as string | undefined);
  const { readEvents } = await import('../../app/read-events.ts');
  // Following ends with SIGINT, SIGTERM or a reader that went away; listened for only once following starts.
  const controller = new AbortController();
  const stop = () => controller.abort();
  const follow = () => {
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    if (io.readerGone.signal.aborted) stop();
    io.readerGone.signal.addEventListener('abort', stop, { once: true });
    return controller.signal;
  };
  const names = new TargetNames();
  try {
    for await (const e of readEvents({ stateDir, since, follow: o.follow === true ? follow : undefined })) {
      if (io.readerGone.signal.aborted) return 0;
      io.print(json ? JSON.stringify(e) : renderEvent(e, names));
    }
    return 0;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    io.readerGone.signal.removeEventListener('abort', stop);
  }
}
