// Changes to what exists, on the simulated kernel: carried out (a raised pool size, a raised device
// size grown online, a device's new layer replaced after confirmation) or refused at plan time with
// exit 2 naming the manifest file, the field and the recorded value.

import { describe, it, expect, onTestFinished } from 'vitest';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as api from '../../src/api/index.ts';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { buildTar } from '../layers/tar-builder.ts';
import { simMounted } from '../sim-mounts.ts';
import { changeDevice, simPool, withPool, writeManifest, type ManifestDraft } from '../builders/manifest.ts';

const MiB = 1024 * 1024;

function box() {
  const root = mkdtempSync(join(tmpdir(), 'thinlayer-changes-'));
  onTestFinished(() => rmSync(root, { recursive: true, force: true }));
  writeFileSync(join(root, 'a.tar'), buildTar([{ name: 'from-a', content: 'a' }]));
  writeFileSync(join(root, 'b.tar'), buildTar([{ name: 'from-b', content: 'b' }]));
  const file = join(root, 'thinlayer.yaml');
  const opts = { stateDir: join(root, 'state'), backend: 'sim' as const };
  const write = (edit: (m: ManifestDraft) => ManifestDraft = (m) => m) => writeManifest(file, edit(manifest(root)));
  return {
    root,
    file,
    opts,
    write,
    mnt: (name: string) => join(root, 'mnt', name),
    seen: (name: string) => simMounted(opts.stateDir, join(root, 'mnt', name)),
  };
}

function manifest(root: string): ManifestDraft {
  return {
    pool: simPool('chg', { data: { file: 'data.img', size: '1G' } }),
    layers: { a: { source: 'a.tar' }, b: { source: 'b.tar' } },
    devices: { app: { layer: 'a', size: '512M', mountpoint: `${root}/mnt/app` } },
  };
}

async function failure(work: Promise<unknown>): Promise<any> {
  return work.then(
    () => null,
    (e) => e,
  );
}

/** The simulated filesystem's own record of its size (the sim keeps one per thin device). */
function simFsBytes(stateDir: string, thinId: number): number {
  const pools = join(stateDir, 'sim', 'persistent', 'pools');
  const [pool] = readdirSync(pools);
  return JSON.parse(readFileSync(join(pools, pool, 'thins', String(thinId), 'fs.json'), 'utf8')).sizeBytes;
}

describe('changes to an existing pool', () => {
  it('refuses pool.name, blockSize, filesystem and backing changes with exit 2, naming the file, the field and the recorded value', async () => {
    const b = box();
    b.write();
    await api.apply(b.file, { ...b.opts, yes: true });
    const cases: Array<[string, (m: ManifestDraft) => ManifestDraft, RegExp]> = [
      ['pool.name', (m) => withPool(m, { name: 'other' }), /pool\.name: the pool in this state dir is named "chg".*thinlayer destroy/],
      ['pool.blockSize', (m) => withPool(m, { blockSize: '128K' }), /pool\.blockSize: the pool was made with 64 KiB blocks/],
      ['pool.filesystem', (m) => withPool(m, { baseSize: '512M', filesystem: 'xfs' }), /pool\.filesystem: the base and every layer and device hold ext4/],
      [
        'pool.data',
        (m) => withPool(m, { data: { file: 'other.img', size: '1G' } }),
        /pool\.data: the pool's data is the file data\.img; it cannot move to the file other\.img/,
      ],
      [
        'pool.data.size',
        (m) => withPool(m, { data: { file: 'data.img', size: '512M' } }),
        /pool\.data\.size: cannot be lowered from 1 GiB to 512 MiB.*pool grow/,
      ],
      ['pool.metadata.size', (m) => withPool(m, { metadata: { file: 'metadata.img', size: '32M' } }), /pool\.metadata\.size: cannot be lowered/],
      ['devices.app.size', (m) => changeDevice(m, 'app', { size: '384M' }), /devices\.app\.size: cannot be lowered from 512 MiB to 384 MiB/],
    ];
    for (const [field, edit, pattern] of cases) {
      b.write(edit);
      for (const run of [() => api.planFor(b.file, b.opts), () => api.apply(b.file, { ...b.opts, yes: true })]) {
        const e = await failure(run());
        expect(e?.exitCode, field).toBe(2);
        expect(e.message, field).toContain(`${b.file}: ${field}: `);
        expect(e.message, field).toMatch(pattern);
        expect(e.detail).toMatchObject({ file: b.file, path: field });
      }
    }
    // Nothing changed: the original manifest has nothing to do.
    b.write();
    expect((await api.planFor(b.file, b.opts)).steps).toEqual([]);
    expect(readFileSync(join(b.seen('app'), 'from-a'), 'utf8')).toBe('a');
  });

  it('grows the pool for a raised data.size and metadata.size, as `pool grow` does', async () => {
    const b = box();
    b.write();
    await api.apply(b.file, { ...b.opts, yes: true });
    b.write((m) => withPool(m, { data: { file: 'data.img', size: '3G' }, metadata: { file: 'metadata.img', size: '128M' } }));
    const plan = await api.planFor(b.file, b.opts);
    expect(plan.steps.map((s) => s.op)).toEqual(['pool.grow']);
    expect(plan.steps[0].reason).toMatch(/data file from 1 GiB to 3 GiB and the metadata file from 64 MiB to 128 MiB/);
    await api.apply(b.file, { ...b.opts, yes: true });
    // What plan showed is the step apply logged: the same op and the same args.
    const intents = readFileSync(join(b.opts.stateDir, 'events.ndjson'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((e) => e.type === 'step.intent' && e.op === 'pool.grow');
    expect(intents.map((e) => e.args)).toEqual([plan.steps[0].args]);
    expect(statSync(join(b.opts.stateDir, 'data.img')).size).toBe(3 * 1024 * MiB);
    expect(statSync(join(b.opts.stateDir, 'metadata.img')).size).toBe(128 * MiB);
    expect((await api.status(b.opts)).pool?.data?.totalBytes).toBe(3 * 1024 * MiB);
    expect((await api.planFor(b.file, b.opts)).steps).toEqual([]);

    // With a plan that also deletes, nothing grows until that plan is confirmed.
    b.write((m) =>
      changeDevice(withPool(m, { data: { file: 'data.img', size: '4G' }, metadata: { file: 'metadata.img', size: '128M' } }), 'app', { layer: 'b' }),
    );
    const asked: string[][] = [];
    const declined = await failure(api.apply(b.file, { ...b.opts, confirm: async (p) => (asked.push(p.steps.map((s) => s.op)), false) }));
    expect(declined?.code).toBe('E_NOT_CONFIRMED');
    expect(asked).toHaveLength(1);
    expect(asked[0][0]).toBe('pool.grow');
    expect(asked[0]).toContain('thin.delete');
    expect(statSync(join(b.opts.stateDir, 'data.img')).size).toBe(3 * 1024 * MiB);
    await api.apply(b.file, { ...b.opts, confirm: async () => (asked.push([]), true) });
    expect(asked).toHaveLength(2); // asked once for the growth and the replacement together
    expect(statSync(join(b.opts.stateDir, 'data.img')).size).toBe(4 * 1024 * MiB);
  });
});

describe('changes to an existing device', () => {
  it('grows a mounted device and its filesystem online for a raised size', async () => {
    const b = box();
    b.write();
    await api.apply(b.file, { ...b.opts, yes: true });
    writeFileSync(join(b.seen('app'), 'kept'), 'written before the grow');
    const before = (await api.status(b.opts)).devices.find((d) => d.name === 'app')!;
    expect(simFsBytes(b.opts.stateDir, before.thinId!)).toBe(512 * MiB);
    b.write((m) => changeDevice(m, 'app', { size: '1G' }));
    const plan = await api.planFor(b.file, b.opts);
    expect(plan.steps.map((s) => `${s.op} ${s.target}`)).toEqual(['thin.resize device:app', 'fs.grow device:app']);
    expect(plan.impact).toBe('update');
    expect(plan.steps[0].reason).toMatch(/grow device app from 512 MiB to 1 GiB \(its table reloaded with the new length, online\)/);
    await api.apply(b.file, b.opts); // no --yes: nothing is deleted
    const sim = new SimKernel({ dir: join(b.opts.stateDir, 'sim') });
    try {
      const [table] = await sim.table(before.dmName!);
      expect(table.length).toBe((1024 * MiB) / 512);
      expect(await sim.blockDeviceSize(before.devPath!)).toBe(1024 * MiB);
      // Still mounted where it was, the same device, with its data.
      expect((await sim.mounts()).find((m) => m.mountpoint === b.mnt('app'))?.minor).toBe(Number(before.devPath!.split('-')[1]));
    } finally {
      await sim.close();
    }
    expect(simFsBytes(b.opts.stateDir, before.thinId!)).toBe(1024 * MiB);
    expect(readFileSync(join(b.seen('app'), 'kept'), 'utf8')).toBe('written before the grow');
    const after = (await api.status(b.opts)).devices.find((d) => d.name === 'app')!;
    expect(after.thinId).toBe(before.thinId);
    expect((await api.planFor(b.file, b.opts)).steps).toEqual([]);
  });

  it('records a raised size of a device that is not active, and grows its filesystem when it is activated, unmounted', async () => {
    const b = box();
    b.write((m) => changeDevice(m, 'app', { state: 'created' }));
    await api.apply(b.file, { ...b.opts, yes: true });
    b.write((m) => changeDevice(m, 'app', { state: 'created', size: '768M' }));
    expect((await api.planFor(b.file, b.opts)).steps.map((s) => s.op)).toEqual(['thin.resize']);
    await api.apply(b.file, b.opts);
    // Activated, not mounted: its filesystem is grown at a private mountpoint, and unmounted after.
    b.write((m) => changeDevice(m, 'app', { state: 'activated', size: '768M' }));
    expect((await api.planFor(b.file, b.opts)).steps.map((s) => s.op)).toEqual(['thin.activate', 'fs.grow']);
    await api.apply(b.file, b.opts);
    const app = (await api.status(b.opts)).devices.find((d) => d.name === 'app')!;
    expect(app.state).toBe('activated');
    expect(simFsBytes(b.opts.stateDir, app.thinId!)).toBe(768 * MiB);
    const sim = new SimKernel({ dir: join(b.opts.stateDir, 'sim') });
    try {
      expect(await sim.mounts()).toEqual([]);
    } finally {
      await sim.close();
    }
    b.write((m) => changeDevice(m, 'app', { size: '768M' }));
    expect((await api.planFor(b.file, b.opts)).steps.map((s) => s.op)).toEqual(['fs.mount']);
    await api.apply(b.file, b.opts);
    expect((await api.planFor(b.file, b.opts)).steps).toEqual([]);
  });

  it('replaces a device whose layer changed only with --yes, the plan naming the data lost', async () => {
    const b = box();
    b.write();
    await api.apply(b.file, { ...b.opts, yes: true });
    writeFileSync(join(b.seen('app'), 'mine'), 'user data');
    const before = (await api.status(b.opts)).devices.find((d) => d.name === 'app')!;
    b.write((m) => changeDevice(m, 'app', { layer: 'b' }));
    const plan = await api.planFor(b.file, b.opts);
    expect(plan.impact).toBe('destroy');
    const deletion = plan.steps.find((s) => s.op === 'thin.delete')!;
    expect(deletion.target).toBe('device:app');
    expect(deletion.reason).toMatch(/replace device app: its layer changed from a to b, so every file written in it is deleted/);
    // Without --yes nothing is changed.
    const refused = await failure(api.apply(b.file, b.opts));
    expect(refused?.code).toBe('E_NOT_CONFIRMED');
    expect(refused?.exitCode).toBe(2);
    expect(readFileSync(join(b.seen('app'), 'mine'), 'utf8')).toBe('user data');
    expect((await api.status(b.opts)).devices.find((d) => d.name === 'app')!.thinId).toBe(before.thinId);
    // With it, the device is a snapshot of the new layer, and has its content.
    await api.apply(b.file, { ...b.opts, yes: true });
    expect(readFileSync(join(b.seen('app'), 'from-b'), 'utf8')).toBe('b');
    expect(existsSync(join(b.seen('app'), 'from-a'))).toBe(false);
    expect(existsSync(join(b.seen('app'), 'mine'))).toBe(false);
    const after = (await api.status(b.opts)).devices.find((d) => d.name === 'app')!;
    expect(after.layer).toBe('b');
    expect(after.thinId).not.toBe(before.thinId);
    expect((await api.planFor(b.file, b.opts)).steps).toEqual([]);
  });
});
