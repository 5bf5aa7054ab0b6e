// Each command's help against what the command really takes: every option it reads (in its file
// under src/cli/commands) is listed, every option listed is read, the global options are listed
// too, and one example parses to the command itself. The README's command table against --help.

import { describe, it, expect } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { Command } from 'commander';
import { main } from '../../src/cli/main.ts';
import { buildProgram, findCommand, type Invocation } from '../../src/cli/program.ts';

const REPO = join(import.meta.dirname, '../..');

async function help(words: string[]): Promise<string> {
  const out = new PassThrough();
  let text = '';
  out.on('data', (c) => (text += c));
  expect(await main(['help', ...words], out, new PassThrough())).toBe(0);
  return text;
}

/** The program and what it parses `argv` to (null when it does not name a command). */
function parse(argv: string[]): Invocation | null {
  let inv: Invocation | null = null;
  const program = buildProgram({ out: () => undefined, err: () => undefined }, (i) => (inv = i));
  program.parse(argv, { from: 'user' });
  return inv;
}

const program = buildProgram({ out: () => undefined, err: () => undefined }, () => undefined);
/** The commands a user runs: `pool grow` and `sim reboot` rather than `pool` and `sim`. */
const LEAVES: [string[], Command][] = program.commands.flatMap((c): [string[], Command][] =>
  c.commands.length > 0 ? c.commands.map((sub): [string[], Command] => [[c.name(), sub.name()], sub]) : [[[c.name()], c]],
);
const GLOBAL = program.options.filter((o) => o.long !== '--version' && o.long !== '--help');

/** The options a source file reads from the parsed options (`o.name`). */
function reads(file: string): Set<string> {
  const source = readFileSync(join(REPO, 'src/cli', file), 'utf8');
  const names = new Set([...source.matchAll(/\bo\.([a-zA-Z]+)\b/g)].map((m) => m[1]));
  if (source.includes("from '../manifest-option.ts'")) for (const n of reads('manifest-option.ts')) names.add(n);
  return names;
}

describe("each command's help", () => {
  it('names every command a user runs', () => {
    expect(LEAVES.map(([words]) => words.join(' ')).sort()).toEqual(
      [
        'apply',
        'commit',
        'destroy',
        'diff',
        'doctor',
        'down',
        'events',
        'export',
        'gc',
        'help',
        'plan',
        'pool grow',
        'sim reboot',
        'snapshotter',
        'status',
        'up',
        'watch',
      ].sort(),
    );
  });

  for (const [words, command] of LEAVES) {
    const name = words.join(' ');
    it(`${name}: lists its own options and the global ones`, async () => {
      const text = await help(words);
      for (const option of [...command.options, ...GLOBAL]) expect(text, `${name} ${option.flags}`).toContain(option.flags);
      expect(text).toMatch(/^Global Options:$/m);
      expect(text).toMatch(/^Exit codes:$/m);
    });

    if (name !== 'help')
      it(`${name}: reads every option it lists, and lists every option it reads`, () => {
        const own = command.options.filter((o) => o.long !== '--help').map((o) => o.attributeName());
        const read = reads(`commands/${words[0]}-command.ts`);
        const globalRead = new Set([...reads('command-context.ts'), ...reads('main.ts')]);
        expect([...read].filter((n) => !own.includes(n) && !GLOBAL.some((g) => g.attributeName() === n))).toEqual([]);
        expect(own.filter((n) => !read.has(n))).toEqual([]);
        // The global options are read for every command where the context is built.
        for (const g of GLOBAL.map((o) => o.attributeName()).filter((n) => n !== 'stateDir')) expect(globalRead, g).toContain(g);
      });

    it(`${name}: gives an example that runs the command itself`, async () => {
      const text = await help(words);
      const examples = /^Examples?:\n((?: {2}.*\n?)+)/m.exec(text);
      expect(examples, `${name} has no Example section`).not.toBeNull();
      const lines = (examples?.[1] ?? '').trim().split('\n');
      const ours = lines
        .flatMap((l) => l.replace(/#.*/, '').split('&&'))
        .map((l) => l.trim().split(/\s+/))
        .filter((argv) => argv[0] === 'thinlayer')
        .map((argv) => parse(argv.slice(1)))
        .filter((inv): inv is Invocation => inv !== null);
      expect(ours.map((inv) => [inv.command, inv.sub].filter(Boolean).join(' '))).toContain(name);
    });
  }
});

describe("the README's command table", () => {
  const readme = readFileSync(join(REPO, 'README.md'), 'utf8');
  const table = /## Commands\n\n```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  /** Each line's commands (`up | down` is two) and the flags it shows. */
  const rows = table
    .trim()
    .split('\n')
    .map((line) => line.replace(/#.*/, '').trim())
    .flatMap((line) => {
      const [first, ...others] = line.replace(/^thinlayer /, '').split(' | ');
      return [first, ...others].map((part) => part.trim().split(/\s+/));
    });

  it('names every command --help lists, and only those', () => {
    expect(table).not.toBe('');
    const named = new Set(rows.map((r) => r[0]));
    expect([...named].sort()).toEqual(
      program.commands
        .map((c) => c.name())
        .filter((n) => n !== 'help')
        .sort(),
    );
  });

  it('shows only options the command takes', () => {
    for (const row of rows) {
      const sub = findCommand(program, row.slice(0, 2));
      const command = sub && sub !== program && row[1] && !row[1].startsWith('-') && sub.name() === row[1] ? sub : findCommand(program, [row[0]]);
      expect(command, row.join(' ')).not.toBeNull();
      const flags = row.join(' ').match(/(?<![\w-])--?[a-z][a-z-]*/g) ?? [];
      const known = [...(command?.options ?? []), ...program.options].flatMap((o) => [o.long, o.short]);
      for (const flag of flags) expect(known, `${row.join(' ')}: ${flag}`).toContain(flag);
    }
  });
});
