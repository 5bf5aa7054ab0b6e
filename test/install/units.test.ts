// The systemd units in systemd/ and the copies of them in the docs are the same text, and they agree
// with the install (docs/operations.md#installing): the command at /usr/local/bin/thinlayer, the docs
// under /usr/local/share/doc/thinlayer, a runtime directory that outlives a stop, and a snapshotter
// that systemd waits for.

import { describe, it, expect } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const REPO = resolve(import.meta.dirname, '../..');
const COMMAND = '/usr/local/bin/thinlayer';
const DOCS_URL = 'file:///usr/local/share/doc/thinlayer/';

const units = readdirSync(join(REPO, 'systemd')).filter((f) => f.endsWith('.service'));
const unitText = (name: string) => readFileSync(join(REPO, 'systemd', name), 'utf8');
const docs = ['README.md', ...readdirSync(join(REPO, 'docs')).map((f) => `docs/${f}`)].map((path) => ({ path, text: readFileSync(join(REPO, path), 'utf8') }));

/** `Key=value` lines of a unit, comments left out. */
function settings(text: string): [string, string][] {
  return text
    .split('\n')
    .filter((l) => /^[A-Za-z]+=/.test(l))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]);
}

describe('the systemd units', () => {
  it('are the two the docs show, each shown exactly as the file in systemd/ holds it', () => {
    expect(units.sort()).toEqual(['thinlayer-snapshotter.service', 'thinlayer.service']);
    const shown = docs.flatMap(({ path, text }) =>
      [...text.matchAll(/```ini\n(# \/etc\/systemd\/system\/(\S+)[\s\S]*?)```/g)].map((m) => ({ path, name: m[2], text: m[1] })),
    );
    expect(shown.map((s) => s.name).sort()).toEqual(units.sort());
    for (const s of shown) expect(s.text, `${s.path}'s ${s.name}`).toBe(unitText(s.name));
  });

  it('run the installed command, point at the installed docs and keep /run/thinlayer when they stop', () => {
    for (const name of units) {
      const set = settings(unitText(name));
      const execs = set.filter(([k]) => k.startsWith('Exec') && k !== 'ExecReload');
      expect(execs.length, name).toBeGreaterThan(0);
      for (const [, line] of execs) expect(line.split(' ')[0], name).toBe(COMMAND);
      const documentation = set.find(([k]) => k === 'Documentation')?.[1] ?? '';
      expect(documentation.startsWith(DOCS_URL), name).toBe(true);
      expect(docs.map((d) => d.path)).toContain(`docs/${documentation.slice(DOCS_URL.length)}`);
      if (set.some(([k]) => k === 'RuntimeDirectory')) expect(set, name).toContainEqual(['RuntimeDirectoryPreserve', 'yes']);
      expect(set, name).toContainEqual(['Environment', 'THINLAYER_STATE_DIR=/var/lib/thinlayer']);
    }
  });

  it('make the snapshotter a Type=notify unit that the snapshotter itself tells when it is ready', () => {
    const set = settings(unitText('thinlayer-snapshotter.service'));
    expect(set).toContainEqual(['Type', 'notify']);
    // READY=1 comes from the main process (src/snapshotter/command.ts), which NotifyAccess=main, the default, accepts.
    expect(set.find(([k]) => k === 'NotifyAccess')).toBeUndefined();
  });

  it('name the command by one path in every doc', () => {
    for (const { path, text } of docs) {
      const paths = [...text.matchAll(/(\/[\w./-]*\/bin\/thinlayer)\b/g)].map((m) => m[1]);
      expect(
        paths.filter((p) => p !== COMMAND),
        path,
      ).toEqual([]);
    }
  });
});
