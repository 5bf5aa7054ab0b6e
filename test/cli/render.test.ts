// What people read: sizes in IEC units, the progress bar, the destroy prompt's count, doctor's totals.

import { describe, it, expect } from 'vitest';
import { PassThrough } from 'node:stream';
import { formatBytes, formatDuration } from '../../src/messages/format.ts';
import { progressLine, ProgressBar } from '../../src/cli/progress-bar.ts';
import { renderDeletes, renderEvent, TargetNames, TerminalReporter } from '../../src/cli/render.ts';
import type { ThinlayerEvent } from '../../src/model/events.ts';
import { renderDoctor } from '../../src/doctor/report-text.ts';
import type { DoctorReport } from '../../src/doctor/diagnose.ts';

const MiB = 1024 * 1024;

describe('sizes for people', () => {
  it('are in IEC units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(4096)).toBe('4 KiB');
    expect(formatBytes(1.5 * 1024 * MiB)).toBe('1.5 GiB');
    expect(formatBytes(12 * 1024 * MiB)).toBe('12 GiB');
    expect(formatDuration(200_000)).toBe('3m 20s');
  });
});

describe('the progress bar', () => {
  it('shows bytes done of the total, the rate and the time left', () => {
    const line = progressLine('layer fedora', 256 * MiB, 1024 * MiB, 'bytes', 4000);
    expect(line).toContain('[######..................]');
    expect(line).toContain(' 25%');
    expect(line).toContain('256 MiB of 1 GiB');
    expect(line).toContain('64 MiB/s');
    expect(line).toContain('12s left');
  });

  it('is redrawn in place on a terminal and cleared before the next line of text', () => {
    const out = new PassThrough();
    let written = '';
    out.on('data', (c) => (written += c));
    let now = 0;
    const bar = new ProgressBar(out, () => now);
    bar.update('layer a', MiB, 4 * MiB, 'bytes');
    now = 1000;
    bar.update('layer a', 2 * MiB, 4 * MiB, 'bytes');
    bar.clear();
    const frames = written.split('\r\x1b[2K').filter(Boolean);
    expect(frames).toEqual([expect.stringContaining('1 MiB of 4 MiB'), expect.stringContaining('2 MiB of 4 MiB')]);
    expect(frames[1]).toContain('2 MiB/s');
    expect(written.endsWith('\r\x1b[2K')).toBe(true);
  });

  it('is used by the reporter only on a terminal; elsewhere progress is a line in IEC units', () => {
    const collect = (tty: boolean) => {
      const out = new PassThrough();
      let written = '';
      out.on('data', (c) => (written += c));
      const r = new TerminalReporter(out, false, { tty });
      r.notify({ code: 'progress', task: 'layer a', done: MiB, total: 4 * MiB, unit: 'bytes' });
      r.notify({ code: 'warning', text: 'done' });
      return written;
    };
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the escape sequence a terminal line starts with is what is checked
    expect(collect(true)).toMatch(/^\r\x1b\[2Klayer a {2}\[/);
    expect(collect(false)).toBe('  layer a: 1 MiB of 4 MiB\nnote: done\n');
  });
});

describe("destroy's prompt", () => {
  it('counts everything it deletes', () => {
    const plan = {
      steps: [],
      impact: 'destroy' as const,
      blockers: [],
      deletes: { devices: ['web1', 'web2'], layers: ['fedora'], base: true, pool: true, files: ['/s/data.img', '/s/metadata.img'] },
    };
    expect(renderDeletes(plan)).toBe(
      'This deletes 2 devices (web1, web2), 1 layer (fedora), the base, the pool and 2 files (/s/data.img, /s/metadata.img), with all their data.',
    );
    expect(renderDeletes({ ...plan, deletes: { devices: ['web2'], layers: [], base: false, pool: false, files: [] } })).toBe(
      'This deletes 1 device (web2), with all its data.',
    );
    // Named in natural order, as people count: d2 before d10.
    expect(renderDeletes({ ...plan, deletes: { devices: ['d10', 'd1', 'd2'], layers: [], base: false, pool: false, files: [] } })).toBe(
      'This deletes 3 devices (d1, d2, d10), with all their data.',
    );
  });
});

describe("doctor's totals", () => {
  it('count info findings too', () => {
    const report = {
      backend: 'sim',
      stateDir: '/s',
      pool: { dmName: null, active: false, mode: null, needsCheck: false, data: null, metadata: null, transactionId: null },
      thinIds: null,
      orphans: [],
      missing: [],
      findings: [{ code: 'state.empty', severity: 'info', subject: 'log', message: 'nothing is recorded', repair: 'thinlayer apply -f MANIFEST' }],
      exitCode: 0,
    } as unknown as DoctorReport;
    expect(renderDoctor(report)).toMatch(/0 errors, 0 warnings, 1 info\./);
  });
});

describe('the event log for people', () => {
  it('names a layer as the manifest does, with its digest beside, and says standard input for -f -', () => {
    const names = new TargetNames();
    const intent = {
      seq: 21,
      at: '2026-12-08T02:59:33.449Z',
      type: 'step.intent',
      stepId: 'r:8',
      op: 'snap.create',
      target: 'layer:5f70bf18a0860070',
      args: { label: 'fedora' },
      txid: 1,
    } as unknown as ThinlayerEvent;
    expect(renderEvent(intent, names)).toMatch(/snap\.create layer fedora \(5f70bf18a0860070\) \(txid 1\)$/);
    const done = { seq: 22, at: '2026-12-08T02:59:33.516Z', type: 'step.done', stepId: 'r:8', op: 'snap.create', target: 'layer:5f70bf18a0860070', result: {} };
    expect(renderEvent(done as unknown as ThinlayerEvent, names)).toMatch(/snap\.create layer fedora \(5f70bf18a0860070\)$/);
    const device = { ...done, target: 'device:web1' };
    expect(renderEvent(device as unknown as ThinlayerEvent, names)).toMatch(/snap\.create device web1$/);
    const stdin = { seq: 1, at: '2026-12-08T02:59:33.000Z', type: 'desired.set', manifest: { file: '/home/me/-', layers: [{}], devices: [{}, {}] } };
    expect(renderEvent(stdin as unknown as ThinlayerEvent)).toMatch(/desired\.set \(standard input\): 1 layer, 2 devices$/);
  });
});
