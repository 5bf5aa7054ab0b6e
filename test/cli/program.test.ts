// The command line's grammar and its failures, run in-process through main() with captured streams.

import { describe, it, expect } from 'vitest';
import { PassThrough } from 'node:stream';
import { main } from '../../src/cli/main.ts';
import { parseSince } from '../../src/cli/commands/events-command.ts';
import { summaryLine } from '../../src/cli/output.ts';
import { VERSION } from '../../src/cli/program.ts';
import packageJson from '../../package.json' with { type: 'json' };

async function run(argv: string[]) {
  const out = new PassThrough();
  const err = new PassThrough();
  const chunks = { out: '', err: '' };
  out.on('data', (c) => (chunks.out += c));
  err.on('data', (c) => (chunks.err += c));
  const code = await main(argv, out, err);
  return { code, ...chunks };
}

describe('the command line', () => {
  it('prints its version with --version', async () => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.out.trim()).toBe(packageJson.version);
    expect(VERSION).toBe(packageJson.version);
  });

  it('explains one command with help COMMAND, and refuses help for a command that does not exist with exit 2', async () => {
    const apply = await run(['help', 'apply']);
    expect(apply.code).toBe(0);
    expect(apply.out).toMatch(/Usage: thinlayer apply -f FILE/);
    expect(apply.out).toMatch(/--yes/);
    const grow = await run(['help', 'pool', 'grow']);
    expect(grow.code).toBe(0);
    expect(grow.out).toMatch(/--metadata/);
    const nosuch = await run(['help', 'nosuch']);
    expect(nosuch.code).toBe(2);
    expect(nosuch.err).toMatch(/no command "nosuch"/);
  });

  it('takes `-f --state-dir X` as a missing value, not as a file named --state-dir', async () => {
    const r = await run(['apply', '-f', '--state-dir', '/nonexistent-thinlayer-test']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/-f, --file <file>' argument missing/);
  });

  it('refuses an empty -f', async () => {
    const r = await run(['plan', '-f', '']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/-f needs a manifest file, not an empty string/);
  });

  it('refuses extra positionals and unknown options, naming them', async () => {
    const extra = await run(['doctor', 'web1']);
    expect(extra.code).toBe(2);
    expect(extra.err).toMatch(/too many arguments for 'doctor'/);
    const unknown = await run(['status', '--frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.err).toMatch(/--frobnicate/);
  });

  it('answers a directory given to -f with a sentence, not EISDIR', async () => {
    const r = await run(['plan', '-f', '.', '--state-dir', '/nonexistent-thinlayer-test', '--backend', 'sim']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/\. is a directory: -f takes a manifest file/);
    expect(r.err).not.toMatch(/EISDIR/);
  });

  it('prints a failure once, and with --json also one JSON object on stdout', async () => {
    const r = await run(['apply', '-f', '/nonexistent-thinlayer-test/m.yaml', '--json']);
    expect(r.code).toBe(2);
    expect(r.err.match(/cannot read the manifest/g)).toHaveLength(1);
    const failure = JSON.parse(r.out);
    expect(failure).toEqual({
      error: expect.objectContaining({ code: 'E_USER', message: expect.stringMatching(/cannot read the manifest/), path: null }),
      outcome: 'failed',
      runId: null,
    });
    const usage = JSON.parse((await run(['status', '--json', '--frobnicate'])).out);
    expect(usage.error).toMatchObject({ code: 'E_USAGE', path: '--frobnicate' });
  });

  it('refuses sim reboot on the real kernel', async () => {
    const r = await run(['sim', 'reboot', '--backend', 'kernel']);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/simulated kernel only/);
  });

  it('exits 2 with the help on stderr when no command is given', async () => {
    const r = await run([]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/Usage: thinlayer/);
  });
});

describe('events --since', () => {
  it('takes a sequence number or an ISO time, and nothing else', () => {
    expect(parseSince('120')).toEqual({ seq: 120 });
    expect(parseSince('2026-12-01T10:00:00Z')).toEqual({ time: Date.parse('2026-12-01T10:00:00Z') });
    expect(parseSince('2026-12-01')).toEqual({ time: Date.parse('2026-12-01') });
    for (const bad of ['yesterday', '-1', '1.5', 'May', '12abc', '']) expect(() => parseSince(bad), bad).toThrow(/neither a sequence number nor a time/);
  });
});

describe('summary lines', () => {
  it('share one form across commands', () => {
    expect(summaryLine({ command: 'apply', outcome: 'converged', steps: 12, passes: 2, runId: 'r1' })).toBe(
      'apply: converged after 12 steps in 2 passes (run r1).',
    );
    expect(summaryLine({ command: 'up', outcome: 'converged', steps: 1, passes: 1, runId: 'r2' })).toBe('up: converged after 1 step (run r2).');
    expect(summaryLine({ command: 'destroy', outcome: 'converged', steps: 0 })).toBe('destroy: nothing to do; everything is in its desired state.');
    for (const command of ['up', 'gc', 'pool grow'])
      expect(summaryLine({ command, outcome: 'nothing-recorded', steps: 0 })).toBe(
        `${command}: nothing recorded yet: run \`thinlayer apply -f MANIFEST\` first.`,
      );
  });
});

describe('-o json', () => {
  it('is --json for status only: diff -o json writes a tar named json', async () => {
    const { contextOf } = await import('../../src/cli/command-context.ts');
    const { CliOutput } = await import('../../src/cli/output.ts');
    const { Command } = await import('commander');
    const io = new CliOutput(new PassThrough(), new PassThrough());
    const ctx = (command: string) => contextOf({ command, opts: { output: 'json' }, args: [] }, new Command(), io, '/nonexistent-thinlayer-test');
    expect(ctx('status').json).toBe(true);
    expect(ctx('diff').json).toBe(false);
  });
});
