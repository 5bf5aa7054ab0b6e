// The CLI as scripts and people use it, run as a child process on the simulated kernel: standard
// input manifests, pipes that close early, detailed exit codes, one answer for "nothing recorded",
// sizes and mapped bytes in status, and a destroy prompt that counts what it deletes.

import { describe, it, expect, onTestFinished } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { sandbox, webManifest, BIN } from './cli-harness.ts';

function setup() {
  const box = sandbox();
  onTestFinished(() => box.cleanup());
  const file = box.writeManifest('web.yaml', webManifest(box.mnt));
  return { box, file };
}

/** Runs the CLI with a shell pipeline or standard input, on the sandbox's state dir. */
function shell(box: ReturnType<typeof sandbox>, script: string, input?: string) {
  const r = spawnSync('/bin/bash', ['-c', script], {
    encoding: 'utf8',
    input,
    env: { ...process.env, TL: `${process.execPath} ${BIN} --state-dir ${box.stateDir} --backend sim`, THINLAYER_LOCK_WAIT_MS: '10000' },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the CLI for scripts and people', () => {
  it('reads the manifest from standard input with -f -', () => {
    const { box, file } = setup();
    const r = shell(box, '$TL apply -f - --yes', readFileSync(file, 'utf8'));
    expect(r.stderr).not.toMatch(/internal error/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^apply: converged after \d+ steps/);
    expect(box.json(['status']).devices.map((d: any) => d.state)).toEqual(['mounted', 'activated']);
  });

  it('ends quietly when the reader of its output goes away (events | head -1)', () => {
    const { box } = setup();
    // Enough events that the output cannot fit in the pipe: the writer meets EPIPE for sure.
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`d${i}`, { layer: 'apache', state: 'activated' } as const]));
    const file = box.writeManifest('many.yaml', webManifest(box.mnt, many));
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
    for (let i = 0; i < 2; i++) {
      expect(box.run(['down']).code).toBe(0);
      expect(box.run(['up']).code).toBe(0);
    }
    expect(box.run(['events', '--json']).stdout.length).toBeGreaterThan(96 * 1024); // the pipe holds 64 KiB
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, for the shell
    const r = shell(box, 'set -o pipefail; $TL events --json | head -1; echo "status ${PIPESTATUS[0]}" >&2');
    expect(JSON.parse(r.stdout.trim()).seq).toBe(1);
    expect(r.stderr).not.toMatch(/EPIPE|Error|internal error/);
    expect(r.stderr).toMatch(/^status 0$/m);
  });

  it('plan and status --detailed-exitcode exit 2 when there is something to do and 0 when converged', () => {
    const { box, file } = setup();
    expect(box.run(['plan', '-f', file, '--detailed-exitcode']).code).toBe(2);
    expect(box.run(['plan', '-f', file]).code).toBe(0);
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
    expect(box.run(['plan', '-f', file, '--detailed-exitcode']).code).toBe(0);
    expect(box.run(['status', '--detailed-exitcode']).code).toBe(0);
    expect(box.run(['sim', 'reboot']).code).toBe(0);
    expect(box.run(['status', '--detailed-exitcode']).code).toBe(2);
    expect(box.run(['status']).code).toBe(0);
    expect(box.run(['up']).code).toBe(0);
    expect(box.run(['status', '--detailed-exitcode']).code).toBe(0);
  });

  it('says "nothing recorded" with one exit code from up, down, pool grow, gc, gc --yes and destroy', () => {
    const { box, file } = setup();
    const answers = [['up'], ['down'], ['pool', 'grow', '--data', '4G'], ['gc'], ['gc', '--yes'], ['destroy', '--yes']].map((args) =>
      box.run([...args, '--json']),
    );
    for (const r of answers) {
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout).outcome).toBe('nothing-recorded');
    }
    // Saying so creates nothing: none of them leaves a state dir (an identity, a simulated pool) behind.
    expect(existsSync(box.stateDir)).toBe(false);
    expect(file).toBeTruthy();
  });

  it("shows each device's size and the bytes it maps in the pool", () => {
    const { box, file } = setup();
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
    const status = box.json(['status']);
    for (const d of status.devices) {
      expect(d.sizeBytes).toBe(256 * 1024 * 1024);
      expect(d.mappedBytes).toBeGreaterThan(0);
      expect(d.mappedBytes).toBeLessThanOrEqual(d.sizeBytes);
      expect(d.mappedPercent).toBeCloseTo((d.mappedBytes / d.sizeBytes) * 100, 1);
    }
    const text = box.run(['status']).stdout;
    expect(text).toMatch(/SIZE\s+USED\s+MOUNTPOINT\s+DEV/);
    // The mapped bytes with their share of the size beside them, and the stable /dev/mapper name.
    expect(text).toMatch(/web1\s+apache\s+mounted\s+256 MiB\s+\d+(\.\d)? [KMG]iB \(\d+\.\d%\)\s+\S+\s+\/dev\/mapper\/\S+web1$/m);
    expect(text).not.toMatch(/\/dev\/dm-\d/);
    expect(box.run(['status', '-o', 'wide']).stdout).toMatch(/\/dev\/dm-\d/);
    expect(box.run(['down']).code).toBe(0);
    expect(box.json(['status']).devices.map((d: any) => d.mappedBytes)).toEqual([null, null]);
  });

  it('counts everything destroy deletes before asking', () => {
    const { box, file } = setup();
    expect(box.run(['apply', '-f', file, '--yes']).code).toBe(0);
    const refused = box.run(['destroy']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(
      /This deletes 2 devices \(web1, web2\), 2 layers \(apache, fedora\), the base, the pool and 2 files \([^)]*data\.img, [^)]*metadata\.img\), with all their data\./,
    );
    expect(box.json(['status']).devices).toHaveLength(2);
  });
});
