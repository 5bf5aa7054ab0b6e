// Runs `thinlayer snapshotter` on the simulated kernel, as a child process (the CLI, as containerd
// would find it) or in this process (runSnapshotter, for quick set-up and checks), and talks to it
// through a gRPC client of the same service definition.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { loadSnapshotsService } from '../../src/snapshotter/proto.ts';
import { runSnapshotter } from '../../src/snapshotter/command.ts';
import { silentReporter } from '../../src/messages/message-port.ts';
import { simPool, writeManifest, type ManifestDraft } from '../builders/manifest.ts';

export const BIN = resolve(import.meta.dirname, '../../bin/thinlayer.js');

/** Pool ctr on the sim pool's sizes, with these layers and devices (none unless told). */
export function poolManifest(more: Omit<ManifestDraft, 'pool'> = {}): ManifestDraft {
  return { pool: simPool('ctr'), ...more };
}

export interface Box {
  root: string;
  stateDir: string;
  socket: string;
  manifest: string;
  cleanup(): void;
}

export function box(draft = poolManifest()): Box {
  const root = mkdtempSync(join(tmpdir(), 'thinlayer-snap-'));
  const manifest = join(root, 'pool.yaml');
  writeManifest(manifest, draft);
  return { root, stateDir: join(root, 'state'), socket: join(root, 'snap.sock'), manifest, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

type Call = (req: object, md?: Metadata) => Promise<any>;
export interface Client {
  Prepare: Call;
  View: Call;
  Mounts: Call;
  Commit: Call;
  Remove: Call;
  Stat: Call;
  Update: Call;
  Usage: Call;
  Cleanup: Call;
  List(req: object, md?: Metadata): Promise<any[]>;
  close(): void;
}

export function ns(name: string): Metadata {
  const md = new Metadata();
  md.set('containerd-namespace', name);
  return md;
}

export function client(socket: string): Client {
  const { pkg } = loadSnapshotsService();
  const Ctor = pkg.containerd.services.snapshots.v1.Snapshots;
  const c = new Ctor(`unix://${socket}`, credentials.createInsecure());
  const unary =
    (name: string): Call =>
    (req, md = new Metadata()) =>
      new Promise((res, rej) => c[name](req, md, { deadline: Date.now() + 60_000 }, (err: ServiceError | null, out: any) => (err ? rej(err) : res(out))));
  return {
    Prepare: unary('Prepare'),
    View: unary('View'),
    Mounts: unary('Mounts'),
    Commit: unary('Commit'),
    Remove: unary('Remove'),
    Stat: unary('Stat'),
    Update: unary('Update'),
    Usage: unary('Usage'),
    Cleanup: unary('Cleanup'),
    List: (req, md = new Metadata()) =>
      new Promise((res, rej) => {
        const infos: any[] = [];
        const stream = c.List(req, md);
        stream.on('data', (m: any) => infos.push(...m.info));
        stream.on('error', rej);
        stream.on('end', () => res(infos));
      }),
    close: () => c.close(),
  };
}

/** A socket that is there and is not the one left by an earlier (killed) process. */
function freshSocket(path: string): () => boolean {
  // The inode number alone is not enough: a new socket often reuses the old one's.
  const id = () => {
    const st = statSync(path, { throwIfNoEntry: false, bigint: true });
    return st ? `${st.ino}:${st.ctimeNs}` : undefined;
  };
  const before = id();
  return () => {
    const now = id();
    return now !== undefined && now !== before;
  };
}

async function waitFor(check: () => boolean, what: string, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface Running {
  client: Client;
  stop(): Promise<void>;
}

/** The CLI as a child process; resolves once the socket is there (or rejects if it exits first). */
export async function startChild(
  b: Box,
  env: Record<string, string> = {},
  backend: 'sim' | 'kernel' = 'sim',
): Promise<Running & { proc: ChildProcess; exit: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }> }> {
  const ready = freshSocket(b.socket);
  const proc = spawn(process.execPath, [BIN, 'snapshotter', '-f', b.manifest, '--socket', b.socket, '--state-dir', b.stateDir, '--backend', backend, '-q'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr += d));
  let exited = false;
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((res) =>
    proc.on('exit', (code, signal) => {
      exited = true;
      res({ code, signal, stderr });
    }),
  );
  await waitFor(() => ready() || exited, 'the snapshotter socket').catch((e) => {
    proc.kill('SIGKILL');
    throw new Error(`${e.message}; its stderr: ${stderr}`);
  });
  const c = client(b.socket);
  return {
    proc,
    exit,
    client: c,
    async stop() {
      c.close();
      if (!exited) proc.kill('SIGTERM');
      await exit;
    },
  };
}

/** runSnapshotter in this process (the same code the CLI runs). */
export async function startHere(b: Box, backend: 'sim' | 'kernel' = 'sim'): Promise<Running> {
  const ready = freshSocket(b.socket);
  const controller = new AbortController();
  const done = runSnapshotter({ manifest: b.manifest, socket: b.socket, stateDir: b.stateDir, backend, reporter: silentReporter, signal: controller.signal });
  let failed: unknown = null;
  done.catch((e) => (failed = e));
  await waitFor(() => ready() || failed !== null, 'the snapshotter socket');
  if (failed) throw failed;
  const c = client(b.socket);
  return {
    client: c,
    async stop() {
      c.close();
      controller.abort();
      await done;
    },
  };
}
