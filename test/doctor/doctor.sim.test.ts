// doctor and gc on the simulated kernel, against a real state dir: the log and the pool are made to
// disagree behind thinlayer's back (through the SimKernel of the state dir's sim), and doctor must
// say so, gc must repair what is its to repair, and up the rest.

import { describe, it, expect, onTestFinished } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as api from '../../src/api/index.ts';
import { doctorCommand } from '../../src/cli/commands/doctor-command.ts';
import { gcCommand } from '../../src/cli/commands/gc-command.ts';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { parsePoolStatus } from '../../src/kernel/thin-pool.ts';
import { dmIdentity, thingKey } from '../../src/domain/names.ts';
import { chainLayers, chainHex } from '../../src/plan/layer-chain.ts';
import { openStateDir } from '../../src/events/state-dir.ts';
import { EventLog } from '../../src/events/log.ts';
import type { ThinlayerEvent } from '../../src/model/events.ts';
import type { DoctorReport } from '../../src/doctor/diagnose.ts';
import { loadManifest } from '../../src/manifest/load.ts';
import { simPool, writeManifest, type LayerDraft, type ManifestDraft } from '../builders/manifest.ts';

const POOL = dmIdentity('doc', 'pool').dmName;

/** The layers of the manifest; the default is os, and app on it. */
type Layers = Record<string, LayerDraft>;

function docManifest(mnt: string, layers: Layers = { os: {}, app: { parent: 'os' } }): ManifestDraft {
  return {
    pool: simPool('doc', { data: { file: 'data.img', size: '1G' }, blockSize: '64K' }),
    layers,
    devices: {
      web: { layer: 'app', state: 'mounted', mountpoint: `${mnt}/web` },
      db: { layer: 'app', state: 'activated' },
    },
  };
}

interface Box {
  stateDir: string;
  manifest: string;
  mnt: string;
  /** The simulated kernel of the state dir, for changes behind thinlayer's back. */
  kernel: SimKernel;
  doctor(): Promise<{ code: number; report: DoctorReport }>;
  gc(yes: boolean, more?: { thinId?: number; keepForeign?: boolean }): Promise<{ code: number; out: any }>;
  /** The state dir's identity, which every uuid it gives carries. */
  identity(): Promise<string>;
  events(): Promise<ThinlayerEvent[]>;
  txid(): Promise<number>;
  thingThinId(key: string): Promise<number | undefined>;
  /** The key of the layer device the log records for a manifest layer (layers are keyed by chain id). */
  layerKey(name: string): Promise<string>;
}

function collect(): { stream: Writable; text: () => string } {
  let text = '';
  return {
    stream: new Writable({
      write(chunk, _enc, done) {
        text += chunk.toString();
        done();
      },
    }),
    text: () => text,
  };
}

async function applied(layers?: Layers): Promise<Box> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'thinlayer-doctor-'));
  onTestFinished(() => fs.rmSync(root, { recursive: true, force: true }));
  const stateDir = path.join(root, 'state');
  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(mnt);
  const manifest = path.join(root, 'manifest.yaml');
  writeManifest(manifest, docManifest(mnt, layers));
  await api.apply(manifest, { stateDir, backend: 'sim', yes: true });
  const kernel = new SimKernel({ dir: path.join(stateDir, 'sim') });
  const box: Box = {
    stateDir,
    manifest,
    mnt,
    kernel,
    async doctor() {
      const out = collect();
      const code = await doctorCommand({ stateDir, backend: 'sim', json: true, out: out.stream, err: collect().stream });
      return { code, report: JSON.parse(out.text()) };
    },
    async identity() {
      const s = await api.Session.open({ stateDir, backend: 'sim', reporter: { notify() {} }, mutate: false, command: 'test' });
      try {
        return s.state.identity!;
      } finally {
        await s.close();
      }
    },
    async gc(yes, more = {}) {
      const out = collect();
      const code = await gcCommand({ stateDir, backend: 'sim', json: true, yes, ...more, out: out.stream, err: collect().stream });
      return { code, out: JSON.parse(out.text()) };
    },
    async events() {
      const log = await EventLog.open(await openStateDir(stateDir));
      try {
        return (await log.readAll()).events;
      } finally {
        await log.close();
      }
    },
    async txid() {
      const line = (await kernel.status(POOL)).find((l) => l.type === 'thin-pool')!;
      return parsePoolStatus(line.params).transactionId;
    },
    async thingThinId(key) {
      const s = await api.Session.open({ stateDir, backend: 'sim', reporter: { notify() {} }, mutate: false, command: 'test' });
      try {
        return s.state.things[key]?.thinId;
      } finally {
        await s.close();
      }
    },
    async layerKey(name) {
      const s = await api.Session.open({ stateDir, backend: 'sim', reporter: { notify() {} }, mutate: false, command: 'test' });
      try {
        const chain = s.state.content?.top[name];
        if (!chain) throw new Error(`the log records no content for layer ${name}`);
        return thingKey('layer', chainHex(chain));
      } finally {
        await s.close();
      }
    },
  };
  return box;
}

const codes = (r: DoctorReport) => r.findings.map((f) => `${f.severity}:${f.code}:${f.subject}`);

describe('doctor and gc on the simulated kernel', () => {
  it('reports an orphan made behind the log; gc --yes leaves it, gc --thin-id deletes it only confirmed, through the log under the fence', async () => {
    const box = await applied();
    const healthy = await box.doctor();
    expect(healthy.code).toBe(0);
    expect(healthy.report.findings).toEqual([]);
    expect(healthy.report.pool).toMatchObject({ dmName: POOL, active: true, mode: 'rw' });

    await box.kernel.message(POOL, 'create_thin 99');
    const sick = await box.doctor();
    expect(sick.report.orphans).toEqual([99]);
    expect(sick.report.findings).toEqual([
      expect.objectContaining({ code: 'thin.orphan', severity: 'warning', subject: 'thin:99', repair: 'thinlayer gc --thin-id 99' }),
    ]);
    expect(sick.code).toBe(0);

    // Not this log's: gc does not touch it on its own.
    const dry = await box.gc(false);
    expect(dry.code).toBe(0);
    expect(dry.out).toMatchObject({ dryRun: true, steps: [], skipped: [{ subject: 'thin:99' }] });
    expect((await box.gc(true)).out).toMatchObject({ steps: [], done: 0 });
    expect((await box.doctor()).report.orphans).toEqual([99]);

    // Named, but not confirmed: refused, nothing deleted.
    await expect(box.gc(false, { thinId: 99 })).rejects.toMatchObject({ code: 'E_NOT_CONFIRMED', message: expect.stringContaining('thin id 99') });
    expect((await box.doctor()).report.orphans).toEqual([99]);

    const txBefore = await box.txid();
    const seqBefore = (await box.events()).length;
    const wet = await box.gc(true, { thinId: 99 });
    expect(wet.code).toBe(0);
    expect(wet.out).toMatchObject({ dryRun: false, done: 1, mappedBytes: 0 });
    const logged = (await box.events()).slice(seqBefore);
    expect(logged.map((e) => e.type)).toEqual(['run.started', 'step.intent', 'step.done', 'run.finished']);
    expect(logged[1]).toMatchObject({ op: 'orphan.delete', target: 'thin:99', args: { thinId: 99 }, txid: txBefore });
    expect(logged[2]).toMatchObject({ op: 'orphan.delete', result: { txid: txBefore + 1 } });
    expect(await box.txid()).toBe(txBefore + 1);

    expect((await box.gc(true)).out).toMatchObject({ steps: [], done: 0 });
    const after = await box.doctor();
    expect(after.report.orphans).toEqual([]);
    expect(after.report.findings).toEqual([]);
    expect(after.report.thinIds).toEqual([0, 1, 2, 3, 4]);
  });

  it('settles orphan deletes a crash interrupted, by the transaction-id fence', async () => {
    const box = await applied();
    await box.kernel.message(POOL, 'create_thin 98');
    await box.kernel.message(POOL, 'create_thin 99');
    // gc died twice: once after the delete and the id move of 99 landed, once before 98 was touched.
    const tx = await box.txid();
    const s = await api.Session.open({ stateDir: box.stateDir, backend: 'sim', reporter: { notify() {} }, mutate: true, command: 'gc' });
    await s.append([{ type: 'step.intent', stepId: 'dead:0', op: 'orphan.delete', target: 'thin:99', args: { thinId: 99 }, txid: tx }]);
    await box.kernel.message(POOL, 'delete 99');
    await box.kernel.message(POOL, `set_transaction_id ${tx} ${tx + 1}`);
    await s.append([{ type: 'step.intent', stepId: 'dead:1', op: 'orphan.delete', target: 'thin:98', args: { thinId: 98 }, txid: tx + 1 }]);
    await s.close();

    const sick = await box.doctor();
    expect(codes(sick.report)).toEqual(['warning:step.interrupted:thin:98', 'warning:thin.orphan:thin:98', 'warning:step.interrupted:thin:99']);
    expect(sick.report.findings[0].repair).toBe('thinlayer gc --yes');

    const seqBefore = (await box.events()).length;
    const wet = await box.gc(true);
    expect(wet.out).toMatchObject({ settled: 2, done: 1, steps: [{ op: 'orphan.delete', target: 'thin:98' }] });
    const notes = (await box.events()).slice(seqBefore).filter((e) => e.type === 'recovery.note');
    expect(notes.map((n) => (n as any).detail)).toEqual([
      expect.objectContaining({ stepId: 'dead:0', landed: true }),
      expect.objectContaining({ stepId: 'dead:1', landed: false }),
    ]);
    const after = await box.doctor();
    expect(after.report.findings).toEqual([]);
    expect(after.report.orphans).toEqual([]);
  });

  it('says what drifted from the log, and up repairs it', async () => {
    const box = await applied();
    const db = dmIdentity('doc', 'device', 'db', await box.identity());
    await box.kernel.unmount(path.join(box.mnt, 'web'));
    await box.kernel.remove(db.dmName);
    const drift = await box.doctor();
    expect(codes(drift.report)).toEqual(['warning:device.not-active:device:db', 'warning:device.not-mounted:device:web']);
    expect(drift.code).toBe(0);
    await api.up({ stateDir: box.stateDir, backend: 'sim', yes: true });
    expect((await box.doctor()).report.findings).toEqual([]);

    // db's device comes back mapping the os layer's thin id instead of its own.
    const osId = (await box.thingThinId(await box.layerKey('os')))!;
    const poolInfo = (await box.kernel.info(POOL))!;
    const table = await box.kernel.table(db.dmName);
    await box.kernel.remove(db.dmName);
    await box.kernel.create(db.dmName, db.uuid, [{ ...table[0], params: `${poolInfo.major}:${poolInfo.minor} ${osId}` }]);
    const wrong = await box.doctor();
    expect(codes(wrong.report)).toEqual(['error:thin.table-mismatch:device:db']);
    expect(wrong.report.findings[0].repair).toBe('thinlayer down && thinlayer up');
    expect(wrong.code).toBe(1);
    await api.down({ stateDir: box.stateDir, backend: 'sim', yes: true });
    expect(codes((await box.doctor()).report)).toEqual(['info:pool.inactive:pool']);
    await api.up({ stateDir: box.stateDir, backend: 'sim', yes: true });
    expect((await box.doctor()).report.findings).toEqual([]);
  });

  it('a thin id gone from the pool: doctor fails, gc forgets it, up builds it again', async () => {
    const box = await applied();
    const app = await box.layerKey('app');
    const appId = (await box.thingThinId(app))!;
    await box.kernel.message(POOL, `delete ${appId}`);
    const sick = await box.doctor();
    expect(sick.code).toBe(1);
    expect(sick.report.missing).toEqual([{ key: app, thinId: appId }]);
    expect(sick.report.findings[0]).toMatchObject({ code: 'thin.missing', severity: 'error', repair: 'thinlayer gc --yes && thinlayer up' });

    expect((await box.gc(true)).out).toMatchObject({ steps: [{ op: 'thin.delete', target: app }], done: 1 });
    expect(await box.thingThinId(app)).toBeUndefined();
    await api.up({ stateDir: box.stateDir, backend: 'sim', yes: true });
    const rebuilt = await box.thingThinId(app); // the same content: the same key, a new thin id
    expect(rebuilt).toBeGreaterThan(appId);
    const after = await box.doctor();
    expect(after.report.findings).toEqual([]);
    expect(after.code).toBe(0);
  });

  it('removes an owned device the log never created, then the orphan it mapped', async () => {
    const box = await applied();
    const ghost = dmIdentity('doc', 'device', 'ghost', await box.identity());
    const poolInfo = (await box.kernel.info(POOL))!;
    await box.kernel.message(POOL, 'create_thin 77');
    await box.kernel.create(ghost.dmName, ghost.uuid, [{ start: 0, length: 2048, type: 'thin', params: `${poolInfo.major}:${poolInfo.minor} 77` }]);
    const sick = await box.doctor();
    expect(codes(sick.report)).toEqual(['warning:dm.unknown:dm:thinlayer-doc-dev-ghost', 'warning:thin.orphan:thin:77']);
    // The device carries this state dir's identity: gc removes it. Thin id 77 is not this log's: named only.
    expect((await box.gc(true)).out).toMatchObject({
      steps: [{ op: 'thin.deactivate', target: `dm:${ghost.dmName}` }],
      skipped: [{ subject: 'thin:77' }],
      done: 1,
    });
    expect(await box.kernel.info(ghost.dmName)).toBeNull();
    expect((await box.gc(true, { thinId: 77 })).out).toMatchObject({ steps: [{ op: 'orphan.delete', target: 'thin:77' }], done: 1 });
    expect((await box.doctor()).report.findings).toEqual([]);
  });

  it('deletes layers the manifest no longer lists', async () => {
    const box = await applied({ os: {}, app: { parent: 'os' }, extra: { parent: 'app' } });
    const extra = await box.layerKey('extra');
    const extraId = (await box.thingThinId(extra))!;
    // The manifest without `extra` is recorded, but no apply ran to converge to it.
    const desired = await loadManifest(box.manifest);
    const next = { ...desired, layers: desired.layers.filter((l) => l.name !== 'extra') };
    const s = await api.Session.open({ stateDir: box.stateDir, backend: 'sim', reporter: { notify() {} }, mutate: true, command: 'test' });
    await s.append([{ type: 'desired.set', manifest: next, content: chainLayers(next), source: 'apply' }]);
    await s.close();

    const dry = await box.gc(false);
    expect(dry.out.steps).toEqual([expect.objectContaining({ op: 'thin.delete', target: extra, reason: expect.stringContaining('layer extra (') })]);
    await box.gc(true);
    expect(await box.thingThinId(extra)).toBeUndefined();
    const after = await box.doctor();
    expect(after.report.thinIds).not.toContain(extraId);
    expect(after.report.findings).toEqual([]);
  });

  it('keeps a layer device that a listed layer of the same content still uses', async () => {
    // Two empty layers on one parent have one chain id: `extra` and `app` share a device.
    const box = await applied({ os: {}, app: { parent: 'os' }, extra: { parent: 'os' } });
    const shared = await box.layerKey('extra');
    expect(await box.layerKey('app')).toBe(shared);
    const sharedId = (await box.thingThinId(shared))!;
    const desired = await loadManifest(box.manifest);
    const next = { ...desired, layers: desired.layers.filter((l) => l.name !== 'extra') };
    const s = await api.Session.open({ stateDir: box.stateDir, backend: 'sim', reporter: { notify() {} }, mutate: true, command: 'test' });
    await s.append([{ type: 'desired.set', manifest: next, content: chainLayers(next), source: 'apply' }]);
    await s.close();

    expect((await box.gc(false)).out.steps).toEqual([]);
    const after = await box.doctor();
    expect(after.report.thinIds).toContain(sharedId);
    expect(after.report.findings).toEqual([]);
  });
});

describe('doctor and the integrity of the state dir', () => {
  /** Every file under the state dir with its size, to show that a command wrote nothing. */
  function listing(dir: string): string[] {
    return fs
      .readdirSync(dir, { recursive: true, withFileTypes: true })
      .map((d) => `${path.relative(dir, path.join(d.parentPath, d.name))}:${d.isFile() ? fs.statSync(path.join(d.parentPath, d.name)).size : 'dir'}`)
      .sort();
  }

  it('a thin id changed in snapshot.json: the snapshot is discarded, doctor finds nothing, gc and up delete nothing and keep the data', async () => {
    const box = await applied();
    const web = thingKey('device', 'web');
    const webId = (await box.thingThinId(web))!;
    const seqBefore = (await box.events()).length;
    const file = path.join(box.stateDir, 'snapshot.json');
    const text = fs.readFileSync(file, 'utf8');
    const at = text.indexOf(`"key":"${web}"`);
    expect(at).toBeGreaterThan(-1);
    const idAt = text.indexOf(`"thinId":${webId}`, at);
    const other = webId + 2;
    fs.writeFileSync(file, `${text.slice(0, idAt)}"thinId":${other}${text.slice(idAt + `"thinId":${webId}`.length)}`);

    expect(await box.thingThinId(web)).toBe(webId); // the projection is the log's
    const report = await box.doctor();
    expect(report.report.findings).toEqual([]);
    expect(report.code).toBe(0);
    expect((await box.gc(false)).out).toMatchObject({ steps: [] });
    expect((await box.gc(true)).out).toMatchObject({ steps: [] });
    await api.up({ stateDir: box.stateDir, backend: 'sim', yes: true });
    // Nothing deleted or made again since the damage: the device keeps its thin id and its data.
    const since = (await box.events()).slice(seqBefore);
    expect(since.filter((e) => e.type === 'step.intent' && /delete|create|snap|format/.test(e.op))).toEqual([]);
    expect(await box.thingThinId(web)).toBe(webId);
    const after = await box.doctor();
    expect(after.report.thinIds).toContain(webId);
    expect(after.report.thinIds).not.toContain(other);
    expect(after.report.findings).toEqual([]);
  });

  it('a torn last line: doctor reports it and writes nothing; up keeps it whole in torn/ and doctor names that file until it is removed', async () => {
    const box = await applied();
    const logFile = path.join(box.stateDir, 'events.ndjson');
    const torn = `{"seq":999,"at":"2026-01-01T00:00:00.000Z","type":"step.intent","op":"thin.create","target":"device:x","args":{"pad":"${'z'.repeat(400)}`;
    fs.appendFileSync(logFile, torn);
    const before = listing(box.stateDir);

    const seen = await box.doctor();
    expect(codes(seen.report)).toEqual(['warning:log.torn-tail:log']);
    expect(seen.code).toBe(0);
    expect(listing(box.stateDir)).toEqual(before); // read-only: nothing kept, nothing cut

    await api.up({ stateDir: box.stateDir, backend: 'sim', yes: true });
    const kept = fs.readdirSync(path.join(box.stateDir, 'torn'));
    expect(kept).toHaveLength(1);
    const keptFile = path.join(box.stateDir, 'torn', kept[0]);
    expect(fs.readFileSync(keptFile, 'utf8')).toBe(torn); // all of it, not a preview
    expect(fs.statSync(keptFile).mode & 0o777).toBe(0o600);
    const note = (await box.events()).find((e) => e.type === 'recovery.note' && e.kind === 'torn-tail');
    expect(note).toMatchObject({ detail: { bytes: Buffer.byteLength(torn), keptAs: `torn/${kept[0]}` } });

    const after = await box.doctor();
    expect(codes(after.report)).toEqual([`warning:log.torn-tail:log:torn/${kept[0]}`]);
    expect(after.report.findings[0].message).toContain(keptFile);
    expect(after.report.findings[0].repair).toContain(`rm ${keptFile}`);
    fs.rmSync(keptFile);
    expect((await box.doctor()).report.findings).toEqual([]);
  });

  it('a flipped bit in the last, complete line of the log: doctor and up refuse, naming the file and the line, and change nothing', async () => {
    const box = await applied();
    const logFile = path.join(box.stateDir, 'events.ndjson');
    const whole = fs.readFileSync(logFile);
    const lines = whole.toString('utf8').split('\n').length - 1;
    const damaged = Buffer.from(whole);
    damaged[whole.length - 30] ^= 0x04;
    fs.writeFileSync(logFile, damaged);
    const before = listing(box.stateDir);
    await expect(box.doctor()).rejects.toMatchObject({
      code: 'E_LOG_CORRUPT',
      exitCode: 1,
      message: expect.stringContaining(`event log ${logFile} is corrupt at line ${lines}`),
    });
    await expect(api.up({ stateDir: box.stateDir, backend: 'sim', yes: true })).rejects.toMatchObject({ code: 'E_LOG_CORRUPT' });
    expect(listing(box.stateDir).filter((l) => !l.startsWith('lock'))).toEqual(before.filter((l) => !l.startsWith('lock')));
    expect(fs.readFileSync(logFile).equals(damaged)).toBe(true);
  });
});

describe('doctor reads the whole log', () => {
  it('refuses a damaged line that a replay from snapshot.json does not read again, naming it', async () => {
    const box = await applied();
    const logFile = path.join(box.stateDir, 'events.ndjson');
    const whole = fs.readFileSync(logFile);
    const third = whole.indexOf(0x0a, whole.indexOf(0x0a) + 1) + 1;
    const damaged = Buffer.from(whole);
    damaged[third + 20] ^= 0x01;
    fs.writeFileSync(logFile, damaged);
    // status replays from the snapshot, which covers that line; doctor checks every line.
    await expect(api.status({ stateDir: box.stateDir, backend: 'sim' })).resolves.toBeTruthy();
    await expect(box.doctor()).rejects.toMatchObject({ code: 'E_LOG_CORRUPT', message: expect.stringContaining(`event log ${logFile} is corrupt at line 3`) });
  });
});
