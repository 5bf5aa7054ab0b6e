// Read-only commands are read-only: status, plan, doctor, events (and gc without --yes) never
// create, chmod or write a state directory. A directory that holds files but no event log (an unset
// variable in `--state-dir "$DIR"` gives the current directory) is refused with exit 2.

import { describe, it, expect, onTestFinished } from 'vitest';
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BIN, webManifest } from './cli-harness.ts';
import { writeManifest } from '../builders/manifest.ts';

function temp(): string {
  const root = mkdtempSync(join(tmpdir(), 'thinlayer-readonly-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  return root;
}

function cli(args: string[], stateDir: string) {
  const r = spawnSync(process.execPath, [BIN, ...args, '--state-dir', stateDir, '--backend', 'sim'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 60_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every name under `dir` with its mode, size and mtime: what a write, a chmod or a new file would change. */
function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    const st = statSync(d);
    out[d] = `${st.mode.toString(8)} ${st.isDirectory() ? '' : st.size} ${st.mtimeMs}`;
    if (st.isDirectory()) for (const name of readdirSync(d)) walk(join(d, name));
  };
  walk(dir);
  return out;
}

describe('read-only commands', () => {
  it('refuse a directory with files but no event log, with exit 2, changing nothing in it', () => {
    const root = temp();
    const dir = join(root, 'project');
    mkdirSync(dir);
    writeFileSync(join(dir, 'README'), 'not a state dir\n');
    mkdirSync(join(dir, 'src'));
    writeFileSync(join(dir, 'src', 'main.c'), 'int main(){}\n');
    chmodSync(dir, 0o755);
    const manifest = join(root, 'web.yaml');
    writeManifest(manifest, webManifest(join(root, 'mnt')));
    const before = fingerprint(dir);
    for (const args of [
      ['status'],
      ['status', '--json'],
      ['plan'],
      ['plan', '-f', manifest],
      ['doctor'],
      ['doctor', '--json'],
      ['events'],
      ['events', '--json'],
      ['gc'],
    ]) {
      const r = cli(args, dir);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/is not a thinlayer state directory/);
      expect(fingerprint(dir), args.join(' ')).toEqual(before);
    }
    expect(statSync(dir).mode & 0o777).toBe(0o755);
  });

  it('create nothing for a state dir that does not exist yet, and write nothing in an empty one', () => {
    const root = temp();
    const manifest = join(root, 'web.yaml');
    writeManifest(manifest, webManifest(join(root, 'mnt')));
    const missing = join(root, 'missing');
    for (const args of [['status'], ['plan', '-f', manifest], ['doctor'], ['events'], ['gc']]) {
      const r = cli(args, missing);
      // gc has nothing recorded to collect: it says so with exit 0, as up and pool grow do.
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(existsSync(missing), args.join(' ')).toBe(false);
    }
    const empty = join(root, 'empty');
    mkdirSync(empty, { mode: 0o755 });
    chmodSync(empty, 0o755);
    const before = fingerprint(empty);
    for (const args of [['status'], ['plan', '-f', manifest], ['doctor'], ['events']]) {
      const r = cli(args, empty);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(fingerprint(empty), args.join(' ')).toEqual(before);
    }
    // plan shows what a first apply would do, without doing any of it.
    expect(JSON.parse(cli(['plan', '-f', manifest, '--json'], empty).stdout).steps.length).toBeGreaterThan(5);
    expect(readdirSync(empty)).toEqual([]);
  });

  it('leave a real state dir as they found it: no chmod, no snapshot, no new file', () => {
    const root = temp();
    const stateDir = join(root, 'state');
    const manifest = join(root, 'web.yaml');
    writeManifest(manifest, webManifest(join(root, 'mnt')));
    expect(cli(['apply', '-f', manifest, '--yes', '-q'], stateDir).code).toBe(0);
    chmodSync(stateDir, 0o750);
    const names = readdirSync(stateDir)
      .filter((n) => n !== 'sim')
      .sort();
    const before = Object.fromEntries(Object.entries(fingerprint(stateDir)).filter(([p]) => !p.startsWith(join(stateDir, 'sim'))));
    for (const args of [['status'], ['plan'], ['plan', '-f', manifest], ['doctor'], ['events'], ['gc']]) {
      const r = cli(args, stateDir);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      const after = Object.fromEntries(Object.entries(fingerprint(stateDir)).filter(([p]) => !p.startsWith(join(stateDir, 'sim'))));
      expect(after, args.join(' ')).toEqual(before);
    }
    expect(
      readdirSync(stateDir)
        .filter((n) => n !== 'sim')
        .sort(),
    ).toEqual(names);
    // A command that writes takes the directory back to private.
    expect(cli(['apply', '-f', manifest, '--yes', '-q'], stateDir).code).toBe(0);
    expect(statSync(stateDir).mode & 0o777).toBe(0o700);
  });

  it('leave a torn last line of the log where it is, and write nothing; the next command that writes keeps it and cuts it off', () => {
    const root = temp();
    const stateDir = join(root, 'state');
    const manifest = join(root, 'web.yaml');
    writeManifest(manifest, webManifest(join(root, 'mnt')));
    expect(cli(['apply', '-f', manifest, '--yes', '-q'], stateDir).code).toBe(0);
    const torn = '{"seq":9999,"at":"2026-01-01T00:00:00.000Z","type":"step.intent","op":"thin.create"';
    appendFileSync(join(stateDir, 'events.ndjson'), torn);
    const before = Object.fromEntries(Object.entries(fingerprint(stateDir)).filter(([p]) => !p.startsWith(join(stateDir, 'sim'))));
    for (const args of [['status'], ['plan'], ['plan', '-f', manifest], ['doctor'], ['events'], ['gc']]) {
      const r = cli(args, stateDir);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      const after = Object.fromEntries(Object.entries(fingerprint(stateDir)).filter(([p]) => !p.startsWith(join(stateDir, 'sim'))));
      expect(after, args.join(' ')).toEqual(before);
    }
    expect(existsSync(join(stateDir, 'torn'))).toBe(false);
    const up = cli(['up'], stateDir);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stderr + up.stdout).toMatch(/torn line .* kept in torn\//);
    const kept = readdirSync(join(stateDir, 'torn'));
    expect(kept.map((n) => readFileSync(join(stateDir, 'torn', n), 'utf8'))).toEqual([torn]);
  });
});
