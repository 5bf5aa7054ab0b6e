// containerd's list filters (containerd/filters): `fieldpath[op value]` selectors, joined by commas
// (all must match), with several filter strings in a request (any may match). Operators: `==`, `!=`,
// `~=` (a regular expression); a selector without one tests that the field is present. Field path
// parts and values may be double-quoted. Snapshot fields: kind, name, parent, labels.KEY.
//
// `~=` is matched by RE2 (re2js), the engine containerd's Go regexp is: the same syntax, and time
// linear in the subject whatever the pattern, so no filter (`^(a+)+$` against a long key) can hold a
// core and stall every other call as a backtracking engine would. A pattern RE2 does not accept is
// InvalidArgument, found when the filter is read, before any snapshot is looked at.

import { RE2JS } from 're2js';
import { SnapshotError } from './errors.ts';

export interface SnapshotFields {
  kind: string; // active | view | committed
  name: string;
  parent: string;
  labels: Record<string, string>;
}

interface Selector {
  path: string[];
  op: '' | '==' | '!=' | '~=';
  value: string;
}

type Compiled = Selector & { re?: RE2JS };

function compilePattern(text: string, pattern: string): RE2JS {
  try {
    return RE2JS.compile(pattern);
  } catch (e) {
    throw new SnapshotError(
      'invalid-argument',
      `filter "${text}": the pattern ${JSON.stringify(pattern)} is not a regular expression: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

/** One filter string into its selectors; InvalidArgument when it does not parse. */
export function parseFilter(text: string): Selector[] {
  const selectors: Selector[] = [];
  let i = 0;
  const fail = (why: string): never => {
    throw new SnapshotError('invalid-argument', `filter "${text}": ${why} at ${i}`);
  };
  const quoted = (): string => {
    let out = '';
    i++; // opening quote
    while (i < text.length && text[i] !== '"') {
      if (text[i] === '\\' && i + 1 < text.length) i++;
      out += text[i++];
    }
    if (text[i] !== '"') fail('unterminated quote');
    i++;
    return out;
  };
  while (i < text.length) {
    const path: string[] = [];
    for (;;) {
      if (text[i] === '"') path.push(quoted());
      else {
        const m = /^[A-Za-z0-9_/-]+/.exec(text.slice(i));
        if (!m) fail('expected a field name');
        path.push(m![0]);
        i += m![0].length;
      }
      if (text[i] === '.') i++;
      else break;
    }
    let op: Selector['op'] = '';
    let value = '';
    const two = text.slice(i, i + 2);
    if (two === '==' || two === '!=' || two === '~=') {
      op = two;
      i += 2;
      if (text[i] === '"') value = quoted();
      else {
        const end = text.indexOf(',', i);
        value = text.slice(i, end < 0 ? text.length : end);
        i += value.length;
      }
    }
    selectors.push({ path, op, value });
    if (i < text.length) {
      if (text[i] !== ',') fail('expected ","');
      i++;
      if (i === text.length) fail('expected a selector after ","');
    }
  }
  return selectors;
}

function field(s: SnapshotFields, path: string[]): string | undefined {
  switch (path[0]) {
    case 'kind':
      return s.kind;
    case 'name':
      return s.name;
    case 'parent':
      return s.parent;
    case 'labels':
      return path.length > 1 && Object.hasOwn(s.labels, path.slice(1).join('.')) ? s.labels[path.slice(1).join('.')] : undefined;
    default:
      return undefined;
  }
}

function matches(s: SnapshotFields, sel: Compiled): boolean {
  const v = field(s, sel.path);
  switch (sel.op) {
    case '':
      return v !== undefined;
    case '==':
      return v === sel.value;
    case '!=':
      return (v ?? '') !== sel.value;
    case '~=':
      return v !== undefined && sel.re!.matcher(v).find();
  }
}

/** A predicate for a request's filters: none means all. */
export function compileFilters(filters: string[]): (s: SnapshotFields) => boolean {
  const parsed: Compiled[][] = filters
    .filter((f) => f.trim() !== '')
    .map((text) => parseFilter(text).map((sel) => (sel.op === '~=' ? { ...sel, re: compilePattern(text, sel.value) } : sel)));
  if (parsed.length === 0) return () => true;
  return (s) => parsed.some((all) => all.every((sel) => matches(s, sel)));
}
