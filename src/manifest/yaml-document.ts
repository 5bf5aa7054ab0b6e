// The YAML layer of the manifest: text to a plain value, the syntax problems the yaml library
// finds (with their lines), duplicate keys, and the line on which any path of the document sits,
// so that every later problem can point at the line to fix.

import { isAlias, isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document, type Node, type YAMLError } from 'yaml';
import { describeValue, type DocPath, type ManifestProblem } from './manifest-error.ts';

export interface ParsedYaml {
  /** The document as plain data; undefined when syntax problems make it meaningless. */
  value: unknown;
  /** Syntax and key problems; each carries its line when known. */
  problems: LocatedProblem[];
  /** The line (1-based) of the node at `path`, or of its nearest ancestor that exists. */
  lineOf(path: DocPath): number | undefined;
}

export interface LocatedProblem extends ManifestProblem {
  line?: number;
}

export function parseYaml(text: string): ParsedYaml {
  const lines = new LineCounter();
  // Duplicate keys are found by the walk below instead, which can name the key and its path.
  const doc = parseDocument(text, { uniqueKeys: false, lineCounter: lines, prettyErrors: false });
  const lineAt = (offset: number | undefined) => (offset === undefined ? undefined : lines.linePos(offset).line);
  const lineOf = (path: DocPath) => lineAt(offsetOf(doc, path));

  // Warnings (an unknown tag, say) are refused too: the library would guess, and a manifest
  // that drives the kernel should mean exactly one thing.
  const yamlProblem = (e: YAMLError, what: string): LocatedProblem => ({
    path: [],
    line: lineAt(e.pos[0]),
    expected: 'valid YAML',
    // The library's advice for several documents names its own API; the user needs the fact.
    got: e.code === 'MULTIPLE_DOCS' ? 'more than one document (a manifest is one YAML document)' : `${what} (${e.message.split('\n')[0]})`,
  });
  const syntax = [...doc.errors.map((e) => yamlProblem(e, 'a syntax error')), ...doc.warnings.map((e) => yamlProblem(e, 'an unsupported construct'))];
  if (syntax.length > 0) return { value: undefined, problems: syntax, lineOf };

  const problems: LocatedProblem[] = [];
  walkKeys(doc.contents, [], problems, lineAt);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    problems.push({ path: [], expected: 'valid YAML', got: `an unusable document (${(e as Error).message})` });
  }
  return { value, problems, lineOf };
}

/** Reports keys that are repeated in one mapping, or that are not plain scalars. */
function walkKeys(node: unknown, path: DocPath, problems: LocatedProblem[], lineAt: (o: number | undefined) => number | undefined): void {
  if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) walkKeys(item, [...path, i], problems, lineAt);
    return;
  }
  if (!isMap(node)) return;
  const firstLine = new Map<string, number | undefined>();
  for (const pair of node.items) {
    if (!isScalar(pair.key)) {
      problems.push({ path, line: lineAt((pair.key as Node | null)?.range?.[0]), expected: 'plain keys', got: 'a key that is a list or a mapping' });
      continue;
    }
    const key = String(pair.key.value);
    const line = lineAt(pair.key.range?.[0]);
    if (firstLine.has(key)) {
      const first = firstLine.get(key);
      const where = first === undefined ? '' : ` (first on line ${first})`;
      problems.push({ path: [...path, key], line, expected: 'each key once in a mapping', got: `${describeValue(key)} again${where}` });
    } else {
      firstLine.set(key, line);
    }
    walkKeys(pair.value, [...path, key], problems, lineAt);
  }
}

/** Offset of the node at `path`: the key of a mapping entry, the item of a list, or the deepest ancestor found. */
function offsetOf(doc: Document, path: DocPath): number | undefined {
  let node: unknown = doc.contents;
  let offset = (doc.contents as Node | null)?.range?.[0];
  for (const segment of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(segment));
      if (!pair) break;
      offset = (pair.key as Node).range?.[0] ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === 'number' && node.items[segment] !== undefined) {
      node = node.items[segment];
      offset = (node as Node).range?.[0] ?? offset;
    } else {
      break; // a scalar, an alias or a missing entry: the ancestor is as close as the text gets
    }
    if (isAlias(node)) break;
  }
  return offset;
}
