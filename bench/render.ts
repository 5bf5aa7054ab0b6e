// docs/benchmarks.md from bench/template.md and the stored results. Pure: text in, text out.
// The template's `{{suite:NAME}}` lines become that suite's figures, each under the machine, the
// date and the command that reproduce them; a suite that failed or was not run says so in bold.

import { machineLine } from './machine.ts';
import type { Cell, SuiteResult, Table } from './result.ts';
import type { Suite } from './suite.ts';

const PLACEHOLDER = /^\{\{suite:([a-z0-9-]+)\}\}$/gm;

export function renderDocument(template: string, suites: readonly Suite[], results: readonly SuiteResult[]): string {
  const byName = new Map(results.map((r) => [r.suite, r]));
  const known = new Set(suites.map((s) => s.name));
  return template.replace(PLACEHOLDER, (_all, name: string) => {
    if (!known.has(name)) return `> **Unknown suite \`${name}\` in bench/template.md.**`;
    const result = byName.get(name);
    if (!result) return `> **Not measured yet.** Run \`npm run bench -- --only ${name}\`.`;
    return renderSuite(result);
  });
}

export function renderSuite(r: SuiteResult): string {
  const lines: string[] = [];
  lines.push(
    `*Measured ${r.date.slice(0, 16).replace('T', ' ')} UTC on ${machineLine(r.machine)}. Reproduce with \`${r.command}\` (${(r.durationMs / 1000).toFixed(0)} s).*`,
  );
  if (r.quick) lines.push('', '> **Quick sizes (`--quick`)**: these figures are from the small sizes, not the ones the targets name.');
  if (r.status === 'failed')
    lines.push('', `> **FAILED: this suite did not finish, and the figures below (if any) are partial.**`, '', '```text', (r.reason ?? '').trim(), '```');
  if (r.status === 'skipped') lines.push('', `> **NOT MEASURED: ${r.reason}.**`);
  if (r.targets.length > 0) {
    lines.push('', '| target | measured | |', '| --- | --- | --- |');
    for (const t of r.targets) lines.push(`| ${cell(t.target)} | ${cell(t.measured)} | ${t.met ? 'met' : '**missed**'} |`);
  }
  for (const table of r.tables) lines.push('', ...renderTable(table));
  if (r.notes.length > 0) lines.push('', ...r.notes.map((n) => `- ${n}`));
  return lines.join('\n');
}

export function renderTable(t: Table): string[] {
  const out = [`**${t.title}**`, '', `| ${t.columns.map(cell).join(' | ')} |`, `| ${t.columns.map(() => '---').join(' | ')} |`];
  for (const row of t.rows) out.push(`| ${row.map(cell).join(' | ')} |`);
  if (t.note) out.push('', `<sub>${t.note}</sub>`);
  return out;
}

function cell(c: Cell): string {
  if (c === null) return '';
  if (typeof c === 'number') return Number.isInteger(c) && Math.abs(c) >= 10_000 ? c.toLocaleString('en-US') : String(c);
  return c.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}
