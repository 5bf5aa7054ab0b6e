// doctor and gc on the real kernel (inside the test VM: npm run test:kernel): the pool's thin ids
// are read with thin_ls through a metadata snapshot of the live pool, an orphan made behind the
// log is reported and deleted by gc under the transaction-id fence, and the snapshot is released.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import * as api from '../../src/api/index.ts';
import { doctorCommand } from '../../src/cli/commands/doctor-command.ts';
import { gcCommand } from '../../src/cli/commands/gc-command.ts';
import { LinuxKernel, linuxKernelAvailable } from '../../src/kernel/linux/index.ts';
import { parsePoolStatus } from '../../src/kernel/thin-pool.ts';
import { dmIdentity } from '../../src/domain/names.ts';
import { writeManifest } from '../builders/manifest.ts';

const POOL_NAME = `doc${process.pid}`;
const POOL = dmIdentity(POOL_NAME, 'pool').dmName;

function collect(): { stream: Writable; text: () => string } {
  let text = '';
  return {
    stream: new Writable({
      write: (chunk, _enc, done) => {
        text += chunk.toString();
        done();
      },
    }),
    text: () => text,
  };
}

beforeAll(() => {
  // This tier runs only where the real kernel is: failing here says so instead of skipping.
  expect(linuxKernelAvailable(), 'needs /dev/mapper/control and root: run it with npm run test:kernel').toBe(true);
});

describe('doctor and gc on the real kernel', () => {
  it("finds an orphan with thin_ls on a metadata snapshot; gc --yes leaves it (not this log's), gc --thin-id deletes it", async () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tl-doctor-'));
    const stateDir = path.join(root, 'state');
    const manifest = path.join(root, 'm.yaml');
    writeManifest(manifest, {
      pool: { name: POOL_NAME, data: { file: 'data.img', size: '512M' }, metadata: { file: 'metadata.img', size: '16M' }, blockSize: '64K', baseSize: '64M' },
      layers: { os: {} },
      devices: { d1: { layer: 'os', state: 'activated' } },
    });
    const opts = { stateDir, backend: 'kernel' as const, yes: true };
    onTestFinished(async () => {
      await api.destroy(opts).catch(() => undefined);
      fs.rmSync(root, { recursive: true, force: true });
    });
    await api.apply(manifest, opts);
    const kernel = new LinuxKernel();
    onTestFinished(() => kernel.close());
    const status = async () => parsePoolStatus((await kernel.status(POOL)).find((l) => l.type === 'thin-pool')!.params);

    const doctor = async () => {
      const out = collect();
      const code = await doctorCommand({ stateDir, backend: 'kernel', json: true, out: out.stream, err: collect().stream });
      return { code, report: JSON.parse(out.text()) };
    };
    const healthy = await doctor();
    expect(healthy.report.thinIds).toEqual([0, 1, 2]);
    expect(healthy.report.findings).toEqual([]);
    expect(healthy.code).toBe(0);
    expect((await status()).heldMetadataRoot).toBeNull(); // the snapshot was released

    await kernel.message(POOL, 'create_thin 99');
    const sick = await doctor();
    expect(sick.report.orphans).toEqual([99]);
    expect(sick.report.findings.map((f: { code: string }) => f.code)).toEqual(['thin.orphan']);

    const tx = (await status()).transactionId;
    const unnamed = collect();
    expect(await gcCommand({ stateDir, backend: 'kernel', json: true, yes: true, out: unnamed.stream, err: collect().stream })).toBe(0);
    expect(JSON.parse(unnamed.text())).toMatchObject({ steps: [], skipped: [{ subject: 'thin:99' }] });
    expect((await status()).transactionId).toBe(tx);
    const out = collect();
    expect(await gcCommand({ stateDir, backend: 'kernel', json: true, yes: true, thinId: 99, out: out.stream, err: collect().stream })).toBe(0);
    // Its mapped size comes from thin_ls (MAPPED_BYTES): nothing was ever written to it.
    expect(JSON.parse(out.text())).toMatchObject({ done: 1, mappedBytes: 0, steps: [{ op: 'orphan.delete', target: 'thin:99' }] });
    expect((await status()).transactionId).toBe(tx + 1);
    const after = await doctor();
    expect(after.report.thinIds).toEqual([0, 1, 2]);
    expect(after.report.findings).toEqual([]);
  });
});
