// Ownership on the simulated kernel, tried the way an attacker or an unlucky user would: two state
// dirs that give their pools the same name on one kernel, an older events.ndjson put back, a deleted
// log, a thin id taken behind the log's back, a snapshot.json of another log, and a state dir of the
// release before identities.

import { describe, it, expect, onTestFinished } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import * as api from '../../src/api/index.ts';
import { SimKernel } from '../../src/kernel/sim/index.ts';
import { CollectingReporter } from '../../src/messages/message-port.ts';
import { parsePoolStatus } from '../../src/kernel/thin-pool.ts';
import { doctorCommand } from '../../src/cli/commands/doctor-command.ts';
import { gcCommand } from '../../src/cli/commands/gc-command.ts';
import type { DoctorReport } from '../../src/doctor/diagnose.ts';
import { identityOfUuid } from '../../src/domain/names.ts';
import { simMountedIn } from '../sim-mounts.ts';
import { simPool, writeManifest, type DeviceDraft, type ManifestDraft } from '../builders/manifest.ts';

const POOL = 'thinlayer-shared-pool';

function manifest(mnt: string, devices: string[]): ManifestDraft {
  return {
    pool: simPool('shared', { data: { file: 'data.img', size: '1G' }, baseSize: '128M' }),
    layers: { os: {} },
    devices: Object.fromEntries(devices.map((d): [string, DeviceDraft] => [d, { layer: 'os', state: 'mounted', mountpoint: `${mnt}/${d}` }])),
  };
}

function sink(): { stream: Writable; text: () => string } {
  let text = '';
  return {
    stream: new Writable({
      write: (c, _e, done) => {
        text += c.toString();
        done();
      },
    }),
    text: () => text,
  };
}

/** Two state dirs (or one) on one simulated kernel, kept in `simDir`. */
function host() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'thinlayer-own-'));
  onTestFinished(() => fs.rmSync(root, { recursive: true, force: true }));
  const simDir = path.join(root, 'sim');
  const kernel = () => new SimKernel({ dir: simDir });
  const dir = (name: string) => {
    const stateDir = path.join(root, name);
    const mnt = path.join(root, `${name}-mnt`);
    fs.mkdirSync(mnt, { recursive: true });
    const file = (devices: string[]) => {
      const f = path.join(root, `${name}.yaml`);
      writeManifest(f, manifest(mnt, devices));
      return f;
    };
    const opts = (reporter = new CollectingReporter()) => ({ stateDir, backend: 'sim' as const, yes: true, kernel: kernel(), reporter });
    return {
      stateDir,
      mnt,
      file,
      opts,
      apply: (devices: string[], reporter?: CollectingReporter) => api.apply(file(devices), opts(reporter)),
      up: (reporter?: CollectingReporter) => api.up(opts(reporter)),
      async doctor(): Promise<{ code: number; report: DoctorReport }> {
        const out = sink();
        const code = await doctorCommand({ stateDir, backend: 'sim', json: true, out: out.stream, err: sink().stream, kernel: kernel() });
        return { code, report: JSON.parse(out.text()) };
      },
      async gc(yes: boolean, more: { thinId?: number; keepForeign?: boolean } = {}): Promise<{ code: number; out: any }> {
        const out = sink();
        const code = await gcCommand({ stateDir, backend: 'sim', json: true, yes, ...more, out: out.stream, err: sink().stream, kernel: kernel() });
        return { code, out: JSON.parse(out.text()) };
      },
      async state() {
        const s = await api.Session.open({ stateDir, backend: 'sim', reporter: { notify() {} }, mutate: false, command: 'test', kernel: kernel() });
        try {
          return s.state;
        } finally {
          await s.close();
        }
      },
    };
  };
  return { root, kernel, dir, simDir };
}

async function poolFacts(kernel: SimKernel) {
  try {
    const status = parsePoolStatus((await kernel.status(POOL)).find((l) => l.type === 'thin-pool')!.params);
    const info = (await kernel.info(POOL))!;
    return { txid: status.transactionId, uuid: info.uuid };
  } finally {
    await kernel.close();
  }
}

describe('two state dirs, one pool name, one kernel', () => {
  it('the second refuses (exit 1) naming the first as the owner, and touches nothing of it', async () => {
    const h = host();
    const a = h.dir('a');
    const b = h.dir('b');
    await a.apply(['web']);
    fs.writeFileSync(simMountedIn(path.join(path.dirname(a.stateDir), 'sim'), path.join(a.mnt, 'web'), 'secret.txt'), 'a only');
    const before = await poolFacts(h.kernel());
    const aIdentity = (await a.state()).identity!;
    expect(identityOfUuid(before.uuid)).toBe(aIdentity);

    const err = await b.apply(['web']).then(
      () => null,
      (e) => e,
    );
    expect(err).toMatchObject({ code: 'E_BLOCKED', exitCode: 1 });
    expect(err.message).toContain(`identity ${aIdentity}`);
    expect(err.message).toContain(path.join(a.stateDir, 'data.img'));
    // Nothing of a's was loaded, formatted, snapshotted or mounted by b.
    expect(await poolFacts(h.kernel())).toEqual(before);
    expect(fs.existsSync(simMountedIn(path.join(path.dirname(b.stateDir), 'sim'), path.join(b.mnt, 'web'), 'secret.txt'))).toBe(false);
    const k = h.kernel();
    expect((await k.mounts()).filter((m) => m.mountpoint.startsWith(b.mnt))).toEqual([]);
    await k.close();
    expect((await b.state()).things).toEqual({});

    // b recorded nothing: its doctor proposes nothing, its gc has nothing to collect.
    expect((await b.doctor()).report.findings.map((f) => f.repair ?? '').join()).not.toMatch(/gc/);
    const gc = await b.gc(true);
    expect(gc.code).toBe(0);
    expect(gc.out).toEqual({ outcome: 'nothing-recorded', steps: 0 });
    // And a is as healthy as before.
    expect((await a.doctor()).report.findings).toEqual([]);
    expect(fs.readFileSync(simMountedIn(path.join(path.dirname(a.stateDir), 'sim'), path.join(a.mnt, 'web'), 'secret.txt'), 'utf8')).toBe('a only');
  });

  it('one after the other they coexist; while the other owns the pool name, up refuses and doctor names the owner', async () => {
    const h = host();
    const a = h.dir('a');
    const b = h.dir('b');
    await b.apply(['web']);
    await api.down(b.opts());
    await a.apply(['web']);
    fs.writeFileSync(simMountedIn(path.join(path.dirname(a.stateDir), 'sim'), path.join(a.mnt, 'web'), 'secret.txt'), 'a only');
    const before = await poolFacts(h.kernel());
    const err = await b.up().then(
      () => null,
      (e) => e,
    );
    expect(err).toMatchObject({ code: 'E_BLOCKED', exitCode: 1 });
    expect(err.message).toContain(`identity ${(await a.state()).identity}`);
    expect(await poolFacts(h.kernel())).toEqual(before);
    const doc = await b.doctor();
    expect(doc.code).toBe(1);
    const finding = doc.report.findings.find((f) => f.code === 'pool.foreign')!;
    expect(finding.message).toContain(path.join(a.stateDir, 'data.img'));
    expect(doc.report.findings.map((f) => f.repair ?? '').join()).not.toMatch(/gc/);
    expect((await b.gc(true)).out.steps).toEqual([]);
    expect(fs.existsSync(simMountedIn(path.join(path.dirname(b.stateDir), 'sim'), path.join(b.mnt, 'web'), 'secret.txt'))).toBe(false);
    // a down, b up: b's own pool again, with its own data.
    await api.down(a.opts());
    expect((await b.up())?.outcome).toBe('converged');
    expect(fs.existsSync(simMountedIn(path.join(path.dirname(b.stateDir), 'sim'), path.join(b.mnt, 'web'), 'secret.txt'))).toBe(false);
    expect((await b.doctor()).report.findings).toEqual([]);
  });
});

describe('a dm name taken by a foreign uuid', () => {
  it('activation refuses with an error naming the owner, and the device is left as it was', async () => {
    const h = host();
    const a = h.dir('a');
    await a.apply(['web']);
    // Someone else holds the name a new device of a's would get.
    const k = h.kernel();
    const stranger = `thinlayer-${'c'.repeat(32)}-shared-dev-db`;
    await k.create('thinlayer-shared-dev-db', stranger, [{ start: 0, length: 2048, type: 'zero', params: '' }]);
    await k.close();
    const err = await a.apply(['web', 'db']).then(
      () => null,
      (e) => e,
    );
    expect(err).toMatchObject({ code: 'E_NOT_OWNED' });
    expect(err.message).toContain(`identity ${'c'.repeat(32)}`);
    const after = h.kernel();
    expect((await after.info('thinlayer-shared-dev-db'))?.uuid).toBe(stranger);
    expect((await after.table('thinlayer-shared-dev-db'))[0].type).toBe('zero');
    await after.close();
    // doctor does not offer to remove it: it is not this state dir's.
    expect((await a.doctor()).report.findings.map((f) => f.subject)).not.toContain('dm:thinlayer-shared-dev-db');
  });
});

describe('a log behind its pool', () => {
  it('an older events.ndjson put back: up deletes nothing, doctor says what to do, gc --yes deletes nothing', async () => {
    const h = host();
    const a = h.dir('a');
    await a.apply(['web']);
    const older = fs.readFileSync(path.join(a.stateDir, 'events.ndjson'));
    await a.apply(['web', 'newer']);
    fs.writeFileSync(simMountedIn(path.join(path.dirname(a.stateDir), 'sim'), path.join(a.mnt, 'newer'), 'data.txt'), 'made after the backup');
    const newerId = (await a.state()).things['device:newer'].thinId;
    // The backup is put back (snapshot.json is left as it was: it belongs to the newer log).
    fs.writeFileSync(path.join(a.stateDir, 'events.ndjson'), older);

    const reporter = new CollectingReporter();
    expect((await a.up(reporter))?.outcome).toBe('converged');
    expect(
      reporter.messages
        .filter((m) => m.code === 'warning')
        .map((m) => (m as { text: string }).text)
        .join(),
    ).toMatch(/transaction id .* ahead|this log recorded/);
    const doc = await a.doctor();
    expect(doc.code).toBe(1);
    const behind = doc.report.findings.find((f) => f.code === 'pool.log-behind')!;
    expect(behind.repair).toMatch(/newer events.ndjson back.*gc --keep-foreign/);
    expect(doc.report.findings.find((f) => f.subject === `thin:${newerId}`)?.repair).toBe(`thinlayer gc --thin-id ${newerId}`);

    const gc = await a.gc(true);
    expect(gc.code).toBe(1);
    expect(gc.out.blockers.join()).toMatch(/deletes nothing/);
    expect((await a.doctor()).report.thinIds).toContain(newerId);
    // The pool load of `up` did not overwrite the evidence.
    expect((await a.doctor()).report.findings.map((f) => f.code)).toContain('pool.log-behind');

    // An apply that would delete something refuses while it stands.
    const err = await a.apply([]).then(
      () => null,
      (e) => e,
    );
    expect(err).toMatchObject({ code: 'E_BLOCKED' });
    expect(err.message).toMatch(/refusing to delete/);
    expect((await a.doctor()).report.thinIds).toContain(newerId);

    // Kept as foreign: the fact is settled, the id stays, and gc --yes still leaves it.
    expect((await a.gc(true, { keepForeign: true })).out).toMatchObject({ keptForeign: [newerId] });
    const settled = await a.doctor();
    expect(settled.code).toBe(0);
    expect(settled.report.findings).toEqual([expect.objectContaining({ code: 'thin.foreign', subject: `thin:${newerId}` })]);
    expect((await a.gc(true)).out).toMatchObject({ steps: [], done: 0 });
    expect((await a.doctor()).report.thinIds).toContain(newerId);
    // And new thin ids are never that one.
    await a.apply(['web', 'later']);
    expect((await a.state()).things['device:later'].thinId).toBeGreaterThan(newerId);
  });

  it('the pool load of the next up does not erase the evidence', async () => {
    const h = host();
    const a = h.dir('a');
    await a.apply(['web']);
    const older = fs.readFileSync(path.join(a.stateDir, 'events.ndjson'));
    await a.apply(['web', 'newer']);
    const newerId = (await a.state()).things['device:newer'].thinId;
    await api.down(a.opts());
    fs.writeFileSync(path.join(a.stateDir, 'events.ndjson'), older);
    expect((await a.up())?.outcome).toBe('converged'); // loads the pool from its metadata
    const doc = await a.doctor();
    expect(doc.report.findings.map((f) => f.code)).toContain('pool.log-behind');
    expect(doc.report.thinIds).toContain(newerId);
    expect((await a.state()).pool!.txid).toBeLessThan(doc.report.pool.transactionId!);
  });

  it('a deleted log, then apply: refuses over the live pool, and over the pool at rest, formatting nothing', async () => {
    const h = host();
    const a = h.dir('a');
    await a.apply(['web']);
    fs.writeFileSync(simMountedIn(path.join(path.dirname(a.stateDir), 'sim'), path.join(a.mnt, 'web'), 'keep.txt'), 'still here');
    const before = await poolFacts(h.kernel());
    fs.rmSync(path.join(a.stateDir, 'events.ndjson'));
    fs.rmSync(path.join(a.stateDir, 'snapshot.json'), { force: true });

    const live = await a.apply(['web']).then(
      () => null,
      (e) => e,
    );
    expect(live).toMatchObject({ code: 'E_BLOCKED', exitCode: 1 });
    expect(live.message).toMatch(/belongs to the thinlayer state directory with identity/);
    expect(await poolFacts(h.kernel())).toEqual(before);
    expect(fs.readFileSync(simMountedIn(path.join(path.dirname(a.stateDir), 'sim'), path.join(a.mnt, 'web'), 'keep.txt'), 'utf8')).toBe('still here');
  });

  it('a pool at rest whose metadata is not blank, and no log: nothing is formatted or created over it', async () => {
    const h = host();
    const a = h.dir('a');
    await a.apply(['web']);
    await api.down(a.opts());
    fs.rmSync(path.join(a.stateDir, 'events.ndjson'));
    fs.rmSync(path.join(a.stateDir, 'snapshot.json'), { force: true });
    const meta = fs.readFileSync(path.join(a.stateDir, 'metadata.img'));
    const err = await a.apply(['web']).then(
      () => null,
      (e) => e,
    );
    expect(err).toMatchObject({ code: 'E_BLOCKED' });
    expect(err.message).toMatch(/holds data thinlayer did not write: refusing to format it/);
    expect(fs.readFileSync(path.join(a.stateDir, 'metadata.img')).equals(meta)).toBe(true);
  });
});

describe('thin ids proven before trusted', () => {
  it('EEXIST for an id this log never asked for is a collision: reported, the next free id used, the log says which', async () => {
    const h = host();
    const a = h.dir('a');
    await a.apply(['web']);
    const state = await a.state();
    const taken = state.pool!.nextThinId;
    const k = h.kernel();
    await k.message(POOL, `create_thin ${taken}`); // behind the log's back, without moving the transaction id
    await k.close();

    const reporter = new CollectingReporter();
    await a.apply(['web', 'db'], reporter);
    const db = (await a.state()).things['device:db'];
    expect(db.thinId).not.toBe(taken);
    expect(db.thinId).toBeGreaterThan(taken);
    expect(reporter.messages.some((m) => m.code === 'warning' && /collision/.test((m as { text: string }).text))).toBe(true);
    const text = fs.readFileSync(path.join(a.stateDir, 'events.ndjson'), 'utf8');
    const done = text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .find((e) => e.type === 'step.done' && e.target === 'device:db' && e.op === 'snap.create');
    expect(done.result).toMatchObject({ thinId: db.thinId, collidedWith: taken });
    // The device maps its own id, and the taken id is left alone as an orphan this log did not create.
    const doc = await a.doctor();
    expect(doc.report.findings).toEqual([
      expect.objectContaining({ code: 'thin.orphan', subject: `thin:${taken}`, repair: `thinlayer gc --thin-id ${taken}` }),
    ]);
  });
});

describe('snapshot.json checked against the log', () => {
  it('a snapshot of another log is discarded and the log replayed', async () => {
    const h = host();
    const a = h.dir('a');
    const b = h.dir('b');
    await a.apply(['web']);
    await api.apply(b.file(['other']), { ...b.opts(), kernel: new SimKernel({ dir: path.join(h.root, 'sim-b') }) });
    fs.copyFileSync(path.join(b.stateDir, 'snapshot.json'), path.join(a.stateDir, 'snapshot.json'));
    const state = await a.state();
    expect(Object.keys(state.things).sort()).toContain('device:web');
    expect(state.things['device:other']).toBeUndefined();
    expect((await a.doctor()).report.findings).toEqual([]);
  });
});

describe('a state dir of the release before identities', () => {
  it('keeps working: its recorded devices (old uuids) are adopted by exact uuid and table', async () => {
    const h = host();
    const a = h.dir('a');
    await a.apply(['web']);
    await api.down(a.opts());
    // Turn the log into one the release before identities wrote: no identity, uuids without it, and
    // (older still) no checksum on its lines.
    const id = (await a.state()).identity!;
    const log = path.join(a.stateDir, 'events.ndjson');
    const lines = fs
      .readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .map(({ crc: _crc, ...e }) => e);
    const legacy = lines.map((e) => (e.type === 'state.identity' ? { seq: e.seq, at: e.at, type: 'recovery.note', kind: 'drift', detail: {} } : e));
    fs.writeFileSync(log, `${legacy.map((e) => JSON.stringify(e).replaceAll(`thinlayer-${id}-`, 'thinlayer-')).join('\n')}\n`);
    fs.rmSync(path.join(a.stateDir, 'snapshot.json'), { force: true });

    expect((await a.up())?.outcome).toBe('converged');
    const after = await a.state();
    expect(after.identity).not.toBe(id); // a new identity, for what it makes from now on
    expect(after.things['device:web'].uuid).toBe('thinlayer-shared-dev-web');
    const k = h.kernel();
    expect((await k.info('thinlayer-shared-dev-web'))?.uuid).toBe('thinlayer-shared-dev-web');
    await k.close();
    expect((await a.doctor()).report.findings).toEqual([]);
    // New devices carry the new identity.
    await a.apply(['web', 'db']);
    expect(identityOfUuid((await a.state()).things['device:db'].uuid)).toBe(after.identity);
  });
});
