// Reading a manifest: the one entry point the CLI and the engine use. Parsing is pure; loading
// adds only the file read. Nothing here touches the kernel or the state directory, so a bad
// manifest is refused before any side effect.

import { readFile } from 'node:fs/promises';
import { resolve as resolvePath } from 'node:path';
import { InternalError, UserError } from '../errors/index.ts';
import { formatIssue, ManifestError, type ManifestIssue } from './manifest-error.ts';
import { resolveManifest } from './resolve.ts';
import { shapeProblems } from './schema.ts';
import type { Manifest } from './types.ts';
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

/** Reads and parses the manifest at `file`; Manifest.file is its absolute path. */
export async function loadManifest(file: string): Promise<Manifest> {
  const absolute = resolvePath(file);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (e) {
    const reason = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw new UserError(`${file}: cannot read the manifest: ${reason}`, { file, expected: 'a readable manifest file' });
  }
  return parseManifest(text, absolute, { shownAs: file });
}

/** Problems in the order of the document; those without a line keep their place at the end. */
function sortByLine(issues: ManifestIssue[]): ManifestIssue[] {
  return issues
    .map((issue, index) => ({ issue, index }))
    .sort((a, b) => (a.issue.line ?? Infinity) - (b.issue.line ?? Infinity) || a.index - b.index)
    .map(({ issue }) => issue);
}
