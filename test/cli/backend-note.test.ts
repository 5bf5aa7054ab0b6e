// Which kernel `--backend auto` chose is said once: on a state dir's first run (no event log yet),
// or when asked with -v; not on every command, and never with -q or --json.

import { describe, it, expect, onTestFinished } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Command } from 'commander';
import { contextOf } from '../../src/cli/command-context.ts';
import { CliOutput } from '../../src/cli/output.ts';

function noteShown(stateDir: string, opts: Record<string, unknown>): boolean {
  const err = new PassThrough();
  let text = '';
  err.on('data', (c) => (text += c));
  const ctx = contextOf({ command: 'status', opts, args: [] }, new Command(), new CliOutput(new PassThrough(), err), stateDir);
  ctx.reporter.notify({ code: 'backend.notice', backend: 'sim', text: 'no device-mapper on this host: using the simulated kernel' });
  return text.includes('note: no device-mapper on this host');
}

describe('the backend note', () => {
  it("is said on a state dir's first run, then only with -v, and never with -q or --json", () => {
    const dir = mkdtempSync(join(tmpdir(), 'thinlayer-note-'));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    expect(noteShown(dir, {})).toBe(true);
    writeFileSync(join(dir, 'events.ndjson'), '');
    expect(noteShown(dir, {})).toBe(false);
    expect(noteShown(dir, { verbose: true })).toBe(true);
    expect(noteShown(dir, { verbose: true, quiet: true })).toBe(false);
    expect(noteShown(dir, { verbose: true, json: true })).toBe(false);
  });
});
