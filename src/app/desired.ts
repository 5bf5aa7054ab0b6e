// The desired state, read and checked once for every entry point that converges to a manifest
// (apply, plan, watch's runs, the library API, the snapshotter's pool setup): the manifest read
// (or taken as recorded when its digest is the recorded one), the refusals of changes that cannot
// be carried out (a lowered base size, a renamed pool, a lowered device size: refuseDesired), and
// every layer source resolved and checked. Writes nothing: a command that is refused here has
// created and recorded nothing (see openCheckedSession for a state dir that does not exist yet).

import type { Manifest } from '../model/manifest.ts';
import type { ManifestSource } from '../manifest/load.ts';
import type { EngineState } from '../model/engine-state.ts';
import type { ArchiveDigests } from '../layers/types.ts';
import type { LayerContent } from '../model/layer-content.ts';
import { resolveContent } from '../layers/resolve-content.ts';
import { refuseChanges } from '../plan/changes.ts';
import { formatSize } from '../manifest/sizes.ts';
import { UserError } from '../errors/index.ts';

// Imported when used, not above: the YAML parsers and the schema are the larger part of the CLI
// bundle, and only the commands given a manifest file (apply, plan -f) need them.
const manifestReader = () => import('../manifest/load.ts');

/** A Manifest given as it is, or a manifest file read but not yet parsed. */
export type ManifestInput = { given: Manifest } | { source: ManifestSource };

/** A manifest to apply or plan: a file's path, a Manifest, or a manifest text already read (ManifestSource). */
export type ManifestArg = string | Manifest | ManifestSource;

function isSource(m: Manifest | ManifestSource): m is ManifestSource {
  return typeof (m as ManifestSource).text === 'string' && typeof (m as ManifestSource).digest === 'string';
}

/** Reads a manifest file (not parsing it): a missing file is refused before the state dir is opened. */
export async function inputOf(manifest: ManifestArg): Promise<ManifestInput> {
  if (typeof manifest === 'string') return { source: await (await manifestReader()).readManifestSource(manifest) };
  return isSource(manifest) ? { source: manifest } : { given: manifest };
}

/** A desired state ready to plan: the manifest, the digest of the file it was read from, its content. */
export interface DesiredState {
  desired: Manifest;
  /** The digest of the manifest file (recorded with it); null for a Manifest given as it is. */
  digest: string | null;
  content: LayerContent;
}

export interface DesiredOptions {
  /** Archives hashed before, by file identity (the state dir's ArchiveDigestFile). */
  digests?: ArchiveDigests;
  /** How content is resolved, when not by resolveContent (watch keeps the last resolution). */
  resolve?: (manifest: Manifest) => Promise<LayerContent>;
}

/**
 * The Manifest to converge to. A file whose digest is the one recorded with the desired state is
 * that very manifest, read and checked when it was recorded: it is not parsed again (at 10,000
 * devices, parsing is most of a no-op apply).
 */
export async function manifestOf(input: ManifestInput, state: EngineState): Promise<{ desired: Manifest; digest: string | null }> {
  if ('given' in input) return { desired: input.given, digest: null };
  const { source } = input;
  if (state.desired && state.desiredDigest === source.digest) return { desired: state.desired, digest: source.digest };
  return { desired: (await manifestReader()).parseManifestSource(source), digest: source.digest };
}

/** Every refusal of a manifest against what the state dir records (exit 2), in one place. */
export function refuseDesired(state: EngineState, desired: Manifest): void {
  refuseSmallerBase(state, desired);
  refuseChanges(state, desired);
}

/** Existing layers were made at the recorded base size: a smaller one would not hold them. */
function refuseSmallerBase(state: EngineState, desired: Manifest): void {
  const recorded = state.poolSpec;
  if (recorded && recorded.name === desired.pool.name && desired.pool.baseSizeBytes < recorded.baseSizeBytes) {
    throw new UserError(
      `${desired.file || 'manifest'}: pool.baseSize: cannot be lowered from ${formatSize(recorded.baseSizeBytes)} to ${formatSize(desired.pool.baseSizeBytes)}: the base and the layers already made have the recorded size (raising it is fine: new devices get the larger size)`,
      { file: desired.file, path: 'pool.baseSize', expected: `at least ${formatSize(recorded.baseSizeBytes)}` },
      'E_BASE_SIZE',
    );
  }
}

/** The manifest read, refused or accepted against `state`, and its content resolved: the one road to a desired state. */
export async function readDesired(input: ManifestInput, state: EngineState, opts: DesiredOptions = {}): Promise<DesiredState> {
  const { desired, digest } = await manifestOf(input, state);
  refuseDesired(state, desired);
  const content = opts.resolve ? await opts.resolve(desired) : await resolveContent(desired, opts.digests);
  return { desired, digest, content };
}
