// What is wrong with a manifest, as one error that lists every problem found, each naming the
// file, the line where the yaml library knows it, the dotted path inside the document and what
// was expected there. One pass reports everything so that a user fixes a manifest in one go.

import { UserError } from '../errors/index.ts';

/** A path inside the document: mapping keys and sequence indexes, outermost first. */
export type DocPath = readonly (string | number)[];

/** One problem found in a manifest, before it is placed in a file. */
export interface ManifestProblem {
  path: DocPath;
  /** What belongs there, e.g. `one of created, activated, mounted`. */
  expected: string;
  /** What was found, already described (see describeValue); omitted when the expectation says it all. */
  got?: string;
}

/** One problem as reported: placed in its file and on its line. */
export interface ManifestIssue {
  file: string;
  line?: number;
  path: string;
  expected: string;
  message: string;
}

/**
 * `devices.web1.state`; a segment that would not read back as one dotted segment (a name with
 * a dot or a space, an index) is bracketed: `layers["my.layer"].parent`, `list[0]`.
 */
export function formatPath(path: DocPath): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

/** A value as it reads in an error message: `"running"`, `5`, `null`, `a list`, `a mapping`, `nothing`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  return String(value);
}

export function formatIssue(file: string, line: number | undefined, problem: ManifestProblem): ManifestIssue {
  const path = formatPath(problem.path);
  const where = line === undefined ? file : `${file}:${line}`;
  const got = problem.got === undefined ? '' : `, got ${problem.got}`;
  const message = `${where}: ${path === '' ? '' : `${path}: `}expected ${problem.expected}${got}`;
  return { file, ...(line === undefined ? {} : { line }), path, expected: problem.expected, message };
}

/** A manifest that cannot be used: exit 2, every problem on its own line of the message. */
export class ManifestError extends UserError {
  constructor(readonly errors: ManifestIssue[]) {
    super(errors.map((e) => e.message).join('\n'), { file: errors[0]?.file, path: errors[0]?.path, expected: errors[0]?.expected }, 'E_MANIFEST');
    this.name = 'ManifestError';
  }
  override toJSON() {
    return { ...super.toJSON(), errors: this.errors };
  }
}
