// A missing data file, then put back: shared by the simulated and the kernel tier. The pool's data
// file is moved away while the pool is down (a disk not mounted, a file moved); every command then
// says it is missing, with its path, and that the repair is to put it back, never to destroy; once
// it is back, `up` brings every device and its files back.

import { readFileSync, renameSync, writeFileSync, fsyncSync, openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { webManifest, type CliResult } from '../e2e/cli-harness.ts';
import { writeManifest } from '../builders/manifest.ts';

export function missingDataFileComesBack(
  run: (args: string[]) => CliResult,
  box: { root: string; stateDir: string; mnt: string; filesOf?: (mountpoint: string) => string },
): void {
  const filesOf = box.filesOf ?? ((mountpoint: string) => mountpoint);
  const file = join(box.root, 'web.yaml');
  writeManifest(file, webManifest(box.mnt));
  const applied = run(['apply', '-f', file, '--yes']);
  expect(applied.code, applied.stderr).toBe(0);
  const fd = openSync(join(filesOf(join(box.mnt, 'web1')), 'hello.txt'), 'w');
  writeFileSync(fd, 'still here\n');
  fsyncSync(fd);
  closeSync(fd);
  expect(run(['down']).code).toBe(0);

  const data = join(box.stateDir, 'data.img');
  const elsewhere = join(box.root, 'data.img.elsewhere');
  renameSync(data, elsewhere);
  for (const args of [['up'], ['apply', '-f', file, '--yes'], ['plan', '-f', file]]) {
    const r = run(args);
    expect(r.code, `${args.join(' ')}: ${r.stderr}`).not.toBe(0);
    expect(r.stdout + r.stderr, args.join(' ')).toContain(`the pool's data file ${data} is missing`);
    expect(r.stdout + r.stderr, args.join(' ')).toMatch(/put it back/);
    expect(r.stdout + r.stderr, args.join(' ')).not.toMatch(/destroy|metadata was lost/);
  }
  const doctor = run(['doctor', '--json']);
  expect(doctor.code).toBe(1);
  const report = JSON.parse(doctor.stdout);
  const missing = report.findings.filter((f: any) => f.severity === 'error');
  expect(missing.map((f: any) => f.code)).toEqual(['pool.backing-missing']);
  expect(missing[0].message).toContain(data);
  expect(missing[0].repair).toContain(`put ${data} back`);
  expect(JSON.stringify(report.findings)).not.toMatch(/destroy/);

  renameSync(elsewhere, data);
  const up = run(['up']);
  expect(up.code, up.stderr).toBe(0);
  expect(readFileSync(join(filesOf(join(box.mnt, 'web1')), 'hello.txt'), 'utf8')).toBe('still here\n');
  const status = JSON.parse(run(['status', '--json']).stdout);
  expect(status.devices.map((d: any) => [d.name, d.state])).toEqual([
    ['web1', 'mounted'],
    ['web2', 'activated'],
  ]);
  const after = run(['doctor', '--json']);
  expect(after.code, after.stdout).toBe(0);
  expect(JSON.parse(after.stdout).findings.filter((f: any) => f.severity !== 'info')).toEqual([]);
}
