// Reading a manifest: the one entry point the CLI and the engine use. Parsing is pure; loading
// adds only the file read. Nothing here touches the kernel or the state directory, so a bad
// manifest is refused before any side effect.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { InternalError, UserError } from '../errors/index.ts';
import { formatIssue, ManifestError, type ManifestIssue } from './manifest-error.ts';
import { resolveManifest } from './resolve.ts';
import { shapeProblems } from './schema.ts';
import type { Manifest } from '../model/manifest.ts';
import { parseYaml } from './yaml-document.ts';
import { parseYamlQuickly } from './quick-yaml.ts';

export interface ParseOptions {
  /** How messages name the file, when not as `file` (e.g. the path as the user typed it). */
  shownAs?: string;
}

/**
 * The manifest in `text`, validated, with every default filled. `file` becomes Manifest.file and
 * places relative layer sources. Throws ManifestError (a UserError, exit 2) listing every problem.
 */
export function parseManifest(text: string, file: string, options: ParseOptions = {}): Manifest {
  const quick = parseQuickly(text, file);
  if (quick) return quick;
  // The slow road: every problem, each with its line.
  const shownAs = options.shownAs ?? file;
  const yaml = parseYaml(text);
  const issues: ManifestIssue[] = yaml.problems.map((p) => formatIssue(shownAs, p.line ?? yaml.lineOf(p.path), p));
  if (yaml.value === undefined && issues.length > 0) throw new ManifestError(issues);
  if (yaml.value === null || yaml.value === undefined) {
    throw new ManifestError([formatIssue(shownAs, undefined, { path: [], expected: 'a mapping with at least a pool', got: 'an empty document' })]);
  }

  for (const p of shapeProblems(yaml.value)) issues.push(formatIssue(shownAs, yaml.lineOf(p.path), p));
  const { manifest, problems } = resolveManifest(yaml.value, file);
  for (const p of problems) issues.push(formatIssue(shownAs, yaml.lineOf(p.path), p));

  if (issues.length > 0) throw new ManifestError(sortByLine(issues));
  if (!manifest) throw new InternalError(`${shownAs}: the manifest passed every check but could not be built`);
  return manifest;
}

/** The manifest read by the quick road (quick-yaml.ts), or null when it has a problem to report or cannot vouch for the text. */
function parseQuickly(text: string, file: string): Manifest | null {
  const value = parseYamlQuickly(text);
  if (value === null || typeof value !== 'object' || shapeProblems(value).length > 0) return null;
  const { manifest, problems } = resolveManifest(value, file);
  return problems.length === 0 && manifest ? manifest : null;
}

/**
 * What a manifest text means depends on the text, the file's place (relative layer sources) and
 * this reader. Bump when the reader changes what a text means (the schema, a default, a check), so
 * that a manifest recorded by an older reader is read again.
 */
export const MANIFEST_READER_VERSION = 2;

/** A manifest file as read, before parsing. */
export interface ManifestSource {
  /** As the user named it, for messages. */
  shownAs: string;
  absolute: string;
  text: string;
  /** Equal digests mean equal Manifests (see MANIFEST_READER_VERSION). */
  digest: string;
}

export function manifestDigest(text: string, absolute: string): string {
  return createHash('sha256').update(`thinlayer-manifest ${MANIFEST_READER_VERSION}\0${absolute}\0`).update(text).digest('hex');
}

/** Reads the manifest file at `file` without parsing it. */
export async function readManifestSource(file: string): Promise<ManifestSource> {
  const absolute = resolvePath(file);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') {
      throw new UserError(`${file} is a directory: -f takes a manifest file, such as ${file.replace(/\/+$/, '')}/thinlayer.yaml`, {
        file,
        path: '--file',
        expected: 'a manifest file',
      });
    }
    const reason = code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw new UserError(`${file}: cannot read the manifest: ${reason}`, { file, expected: 'a readable manifest file' });
  }
  return { shownAs: file, absolute, text, digest: manifestDigest(text, absolute) };
}

/** The name a manifest read from standard input goes by in messages. */
export const STDIN_NAME = 'standard input';

/**
 * A manifest read from standard input (`-f -`). Relative layer sources in it are relative to the
 * current directory, as if it were a file there.
 */
export async function readManifestStdin(input: NodeJS.ReadableStream): Promise<ManifestSource> {
  const chunks: Buffer[] = [];
  for await (const chunk of input) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') throw new UserError(`${STDIN_NAME}: the manifest is empty`, { file: STDIN_NAME, expected: 'a manifest' });
  const absolute = resolvePath('-');
  return { shownAs: STDIN_NAME, absolute, text, digest: manifestDigest(text, absolute) };
}

export function parseManifestSource(source: ManifestSource): Manifest {
  return parseManifest(source.text, source.absolute, { shownAs: source.shownAs });
}

/** Reads and parses the manifest at `file`; Manifest.file is its absolute path. */
export async function loadManifest(file: string): Promise<Manifest> {
  return parseManifestSource(await readManifestSource(file));
}

/** Problems in the order of the document; those without a line keep their place at the end. */
function sortByLine(issues: ManifestIssue[]): ManifestIssue[] {
  return issues
    .map((issue, index) => ({ issue, index }))
    .sort((a, b) => (a.issue.line ?? Infinity) - (b.issue.line ?? Infinity) || a.index - b.index)
    .map(({ issue }) => issue);
}
