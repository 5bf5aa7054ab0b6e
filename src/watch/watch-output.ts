// How a watcher speaks: the live view on a terminal, NDJSON with --json, or plain timestamped lines
// when stdout is a file or a pipe (a systemd journal). All three render the same messages.

import type { Message, Reporter } from '../messages/message-port.ts';
import type { StatusView } from '../app/status-view.ts';
import { applyMessage, describeMessage, renderLiveView, withStatus, type LiveModel } from './live-view.ts';

export type OutputMode = 'live' | 'json' | 'lines';

/** Live on a terminal, unless NDJSON was asked for. */
export function outputModeFor(out: NodeJS.WritableStream, json: boolean): OutputMode {
  if (json) return 'json';
  return (out as NodeJS.WriteStream).isTTY === true ? 'live' : 'lines';
}

const CLEAR_SCREEN = '\x1b[H\x1b[2J';
/** Redraws are coalesced: a burst of steps repaints the screen once. */
const REDRAW_MS = 100;
/** The view is also repainted now and then, so "converged 5s ago" stays true. */
const REFRESH_MS = 1000;

export class WatchOutput implements Reporter {
  private model: LiveModel;
  private redraw: NodeJS.Timeout | null = null;
  private refresh: NodeJS.Timeout | null = null;

  constructor(
    private readonly out: NodeJS.WritableStream,
    readonly mode: OutputMode,
    model: LiveModel,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.model = model;
    if (mode === 'live') {
      this.refresh = setInterval(() => this.paint(), REFRESH_MS);
      this.refresh.unref();
      this.schedule();
    }
  }

  notify(m: Message): void {
    const at = this.now();
    this.model = applyMessage(this.model, m, at);
    if (this.mode === 'json') {
      // Every quiet drift check would say these; watch.run and watch.run-done already mark each run.
      if (m.code === 'plan.ready' && m.plan.steps.length === 0 && m.plan.blockers.length === 0) return;
      if (m.code === 'run.converged' && m.steps === 0) return;
      this.out.write(`${JSON.stringify({ at: at.toISOString(), ...m })}\n`);
    } else if (this.mode === 'lines') {
      const line = describeMessage(m);
      if (line) this.out.write(`${at.toISOString()} ${line.level === 'info' ? '' : `${line.level}: `}${line.text}\n`);
    } else this.schedule();
  }

  showStatus(view: StatusView): void {
    this.model = withStatus(this.model, view);
    if (this.mode === 'live') this.schedule();
  }

  /** Stops repainting; the live view is drawn a last time so the screen ends in the final state. */
  close(): void {
    if (this.redraw) clearTimeout(this.redraw);
    if (this.refresh) clearInterval(this.refresh);
    this.redraw = this.refresh = null;
    if (this.mode === 'live') {
      this.paint();
      this.out.write('\n');
    }
  }

  private schedule(): void {
    if (this.redraw) return;
    this.redraw = setTimeout(() => {
      this.redraw = null;
      this.paint();
    }, REDRAW_MS);
    this.redraw.unref();
  }

  private paint(): void {
    const width = (this.out as NodeJS.WriteStream).columns ?? 100;
    this.out.write(`${CLEAR_SCREEN + renderLiveView(this.model, { now: this.now(), width })}\n`);
  }
}
