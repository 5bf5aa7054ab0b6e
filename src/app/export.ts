// `thinlayer export LAYER|DEVICE --oci DIR [--tag NAME:TAG] [--compress gzip|none]`: a layer's chain,
// or a device's (its layer's chain and its own changes on top), as an OCI image layout that
// `ctr images import` takes (tarred) and that thinlayer reads back as an `oci:DIR:TAG` source with
// the same chain ids, so an apply of it finds its layers made.
//
// Each layer's tar is read from the source the log recorded for it (an archive, a directory, or a
// committed layer's tar in blobs/) and checked against its diff id as it is written: a source
// changed since it was applied is refused, not exported under a digest it no longer has. A
// device's own changes are read as `diff -o` reads them (logged steps, nothing changed).

import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { UserError, StateError } from '../errors/index.ts';
import { Session, type SessionOptions } from '../engine/session.ts';
import type { LayerUnit } from '../model/layer-content.ts';
import type { Reporter } from '../messages/message-port.ts';
import { EMPTY_LAYER_DIFF_ID } from '../plan/layer-chain.ts';
import { sniffArchive, uncompressedChunks } from '../layers/compression.ts';
import { directoryTar } from '../layers/dir-source.ts';
import { writeOciImage, type ExportLayer, type ExportedImage, type LayerCompression } from '../layers/oci-writer.ts';
import { LayerContentError } from '../layers/errors.ts';
import { diffDevice } from './diff.ts';

export interface ExportOptions {
  session: Omit<SessionOptions, 'mutate' | 'command' | 'reporter'>;
  reporter: Reporter;
  /** A manifest layer's name, or a device's. */
  name: string;
  dir: string;
  /** `NAME:TAG` or `TAG`; defaults to `thinlayer/NAME:latest`. */
  tag?: string;
  compress?: LayerCompression;
}

export interface ExportResult extends ExportedImage {
  name: string;
  kind: 'layer' | 'device';
}

/** A chain's units, root first, ending at `top`. */
function chainOf(units: LayerUnit[], top: string): LayerUnit[] {
  const byId = new Map(units.map((u) => [u.chainId, u]));
  const out: LayerUnit[] = [];
  for (let id: string | null = top; id !== null; ) {
    const unit = byId.get(id);
    if (!unit) throw new StateError(`layer ${id} of the chain is not in the recorded manifest's content`);
    out.unshift(unit);
    id = unit.parentChainId;
  }
  return out;
}

/** The chunks, checked against the diff id as they pass: the last chunk is withheld until the digest matches. */
async function* checked(chunks: AsyncIterable<Buffer>, diffId: string, what: string): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  for await (const chunk of chunks) {
    hash.update(chunk);
    yield chunk;
  }
  const got = `sha256:${hash.digest('hex')}`;
  if (got !== diffId)
    throw new LayerContentError(`its content is now ${got}, not the ${diffId} it was applied with: it changed since; apply it again first`, what, null);
}

function unitTar(unit: LayerUnit): ExportLayer {
  const content = unit.content;
  if (!content)
    return {
      diffId: EMPTY_LAYER_DIFF_ID,
      tar: async function* () {
        yield Buffer.alloc(1024);
      },
    };
  const what = content.label ?? content.path;
  return {
    diffId: unit.diffId,
    tar: () =>
      checked(
        (async function* () {
          if (content.kind === 'dir') yield* directoryTar(content.path);
          else {
            const sniffed = await sniffArchive(content.path);
            if (!('format' in sniffed)) throw new LayerContentError(sniffed.unsupported, what, null);
            yield* uncompressedChunks(content.path, sniffed.format);
          }
        })(),
        unit.diffId,
        what,
      ),
  };
}

export async function exportImage(opts: ExportOptions): Promise<ExportResult> {
  const s = await Session.open({ ...opts.session, reporter: opts.reporter, mutate: false, command: 'export' });
  let layers: ExportLayer[];
  let kind: 'layer' | 'device';
  let deviceLayer: string | null = null;
  try {
    const desired = s.state.desired;
    const content = s.state.content;
    if (!desired || !content) throw new StateError(`nothing is recorded in ${s.stateDir.root}: apply a manifest first`, 'E_NO_LOG');
    const device = desired.devices.find((d) => d.name === opts.name);
    const layerName = desired.layers.some((l) => l.name === opts.name) ? opts.name : (device?.layer ?? null);
    if (!layerName)
      throw new UserError(
        `the manifest has no layer or device named "${opts.name}"`,
        { path: 'NAME', expected: 'a layer or device of the manifest' },
        'E_USAGE',
      );
    kind = layerName === opts.name ? 'layer' : 'device';
    if (kind === 'device') deviceLayer = layerName;
    const top = content.top[layerName];
    layers = top ? chainOf(content.units, top).map(unitTar) : [];
  } finally {
    await s.close();
  }
  const compress = opts.compress ?? 'gzip';
  const tag = opts.tag ?? `thinlayer/${opts.name}:latest`;
  if (kind === 'layer') return { name: opts.name, kind, ...(await writeOciImage(opts.dir, tag, layers, compress)) };
  // A device: its changes against its layer, written as `diff -o` writes them, as the top layer.
  const scratch = mkdtempSync(join(tmpdir(), 'thinlayer-export-'));
  try {
    const changes = join(scratch, 'changes.tar');
    const diff = await diffDevice({ session: opts.session, reporter: opts.reporter, device: opts.name, output: changes });
    if (!diff.tar || diff.layer !== deviceLayer) throw new StateError(`device ${opts.name} is not on layer ${deviceLayer} as its manifest says; apply first`);
    const own: ExportLayer = { diffId: diff.tar.diffId, tar: () => checked(uncompressedChunks(changes, 'tar'), diff.tar!.diffId, changes) };
    return { name: opts.name, kind, ...(await writeOciImage(opts.dir, tag, [...layers, own], compress)) };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
