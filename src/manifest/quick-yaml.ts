// The quick road through a manifest's YAML. The yaml library (yaml-document.ts) keeps every node's
// position so that a problem can name its line, and pays for it: about 0.7 s for a manifest of
// 10,000 devices, most of a no-op apply. js-yaml reads the same text ten times faster but knows no
// lines. So a manifest is read by js-yaml first; only when that road cannot vouch for the result
// (js-yaml refuses the text, the text uses a construct on which the two libraries may disagree, or
// the manifest has a problem to report) is it read again by the yaml library, whose answer decides.
//
// The two roads must give the same value for every text the quick road accepts. What makes them:
// - one schema: YAML 1.2's core schema, with the yaml library's own patterns for null, booleans,
//   integers and floats (js-yaml's defaults also read 0b101, +0x1F and timestamps, and read -.5 as
//   a string);
// - texts with directives (`%YAML 1.1` changes what plain scalars mean) or tags go the slow road;
// - texts with aliases go the slow road (the yaml library limits how far they expand; js-yaml
//   shares them, and a validator walking a shared tree can be made to walk it exponentially);
// - texts with explicit or collection keys (`? k`, `[a]: v`) go the slow road (js-yaml turns such
//   keys into strings, the yaml library reports them);
// - keys that the core schema would read as something other than a string (`null:`, `1:`, `true:`)
//   go the slow road (js-yaml turns them into strings one way, the yaml library another).
// test/manifest/quick-yaml.test.ts checks the agreement on a corpus of texts.

import jsyaml from 'js-yaml';

const NULL = /^(?:~|null|Null|NULL)?$/;
const BOOL = /^(?:true|True|TRUE|false|False|FALSE)$/;
const INT_DEC = /^[-+]?[0-9]+$/;
const INT_OCT = /^0o[0-7]+$/;
const INT_HEX = /^0x[0-9a-fA-F]+$/;
const FLOAT = /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/;
const FLOAT_EXP = /^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/;
const FLOAT_SPECIAL = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/;

const intType = new jsyaml.Type('tag:yaml.org,2002:int', {
  kind: 'scalar',
  resolve: (s: string | null) => s !== null && (INT_DEC.test(s) || INT_OCT.test(s) || INT_HEX.test(s)),
  construct: (s: string) => (INT_OCT.test(s) ? parseInt(s.slice(2), 8) : INT_HEX.test(s) ? parseInt(s.slice(2), 16) : parseInt(s, 10)),
  predicate: (v: unknown) => typeof v === 'number' && Number.isInteger(v),
});

const floatType = new jsyaml.Type('tag:yaml.org,2002:float', {
  kind: 'scalar',
  resolve: (s: string | null) => s !== null && (FLOAT.test(s) || FLOAT_EXP.test(s) || FLOAT_SPECIAL.test(s)),
  construct: (s: string) => {
    if (!FLOAT_SPECIAL.test(s)) return parseFloat(s);
    if (/nan/i.test(s)) return NaN;
    return s.startsWith('-') ? -Infinity : Infinity;
  },
  predicate: (v: unknown) => typeof v === 'number',
});

const nullType = new jsyaml.Type('tag:yaml.org,2002:null', {
  kind: 'scalar',
  resolve: (s: string | null) => s === null || NULL.test(s),
  construct: () => null,
  predicate: (v: unknown) => v === null,
});

const boolType = new jsyaml.Type('tag:yaml.org,2002:bool', {
  kind: 'scalar',
  resolve: (s: string | null) => s !== null && BOOL.test(s),
  construct: (s: string) => s[0] === 't' || s[0] === 'T',
  predicate: (v: unknown) => typeof v === 'boolean',
});

const CORE = jsyaml.FAILSAFE_SCHEMA.extend({ implicit: [nullType, boolType, intType, floatType] });

/** Text on which the two libraries may part ways: directives, tags, aliases, explicit keys, collections as keys. */
const SLOW_ROAD_TEXT = /^%|(?:^|[\s,[{])!|\*|(?:^|[\s,[{])\?(?:\s|$)|[\]}]\s*:(?:\s|$)/m;

/** Characters a null, a boolean or a number can begin with (the empty key is a null). */
const NON_STRING_START = new Set(['~', 'n', 'N', 't', 'T', 'f', 'F', '.', '+', '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);

/** A mapping key the core schema reads as a null, a boolean or a number. */
function isNonStringKey(key: string): boolean {
  if (key !== '' && !NON_STRING_START.has(key[0])) return false; // most keys: no pattern can match
  return (
    NULL.test(key) ||
    BOOL.test(key) ||
    INT_DEC.test(key) ||
    INT_OCT.test(key) ||
    INT_HEX.test(key) ||
    FLOAT.test(key) ||
    FLOAT_EXP.test(key) ||
    FLOAT_SPECIAL.test(key)
  );
}

function keysAreStrings(value: unknown): boolean {
  if (Array.isArray(value)) return value.every(keysAreStrings);
  if (value === null || typeof value !== 'object') return true;
  for (const key in value) {
    if (isNonStringKey(key) || !keysAreStrings((value as Record<string, unknown>)[key])) return false;
  }
  return true;
}

/**
 * The document as plain data when the quick road can vouch for it, else undefined (read the text
 * with the yaml library instead: it decides, and it can say where a problem is).
 */
export function parseYamlQuickly(text: string): unknown {
  if (SLOW_ROAD_TEXT.test(text)) return undefined;
  let value: unknown;
  try {
    // Duplicate keys, several documents, unknown tags: js-yaml throws, and the slow road reports them.
    value = jsyaml.load(text, { schema: CORE });
  } catch {
    return undefined;
  }
  return keysAreStrings(value) ? value : undefined;
}
