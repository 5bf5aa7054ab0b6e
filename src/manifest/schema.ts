// The shape of the YAML manifest, version 1: which keys exist where and what type each holds.
// Values that need more than a type (sizes, names, paths, references between entries) are
// checked in resolve.ts; this file only says what the document may contain, and how zod's
// complaints read as manifest problems.

import { z } from 'zod';
import { describeValue, type DocPath, type ManifestProblem } from './manifest-error.ts';
import { SIZE_EXPECTED } from './sizes.ts';

/** A mapping that refuses unknown keys; the complaint lists the keys it knows. */
function mapping<S extends z.ZodRawShape>(shape: S, what: string) {
  const known = Object.keys(shape).join(', ');
  return z.strictObject(shape, { error: (issue) => (issue.code === 'unrecognized_keys' ? `one of the keys ${known}` : what) });
}

const size = z.union([z.string(), z.number()], { error: SIZE_EXPECTED });
const name = (what: string) => z.string({ error: what });

const backing = mapping(
  {
    file: z.string({ error: 'a file name in the state directory' }),
    size: size.optional(),
    device: z.string({ error: 'a block device path under /dev' }),
  },
  'a mapping with file and size, or with device',
).partial();

const pool = mapping(
  {
    name: name('a pool name'),
    data: backing.optional(),
    metadata: backing.optional(),
    blockSize: size.optional(),
    baseSize: size.optional(),
    filesystem: z.enum(['ext4', 'xfs'], { error: 'one of ext4, xfs' }).optional(),
    minFree: z.string({ error: 'a percentage such as 10%' }).optional(),
    noSpaceTimeout: z.union([z.string(), z.number()], { error: 'a duration such as 60s' }).optional(),
  },
  'a mapping with at least the pool name',
);

const layer = mapping(
  {
    parent: name('the name of another layer').nullable().optional(),
    source: z.string({ error: 'a path (relative to the manifest)' }).optional(),
    allowDevices: z.boolean({ error: 'true or false' }).optional(),
    mountpoint: z.string({ error: 'an absolute path' }).optional(),
  },
  'a mapping (parent, source, allowDevices, mountpoint), or nothing',
);

const device = mapping(
  {
    layer: name('the name of a layer'),
    state: z.enum(['created', 'activated', 'mounted'], { error: 'one of created, activated, mounted' }).optional(),
    mountpoint: z.string({ error: 'an absolute path' }).optional(),
    mountOptions: z.array(z.enum(['suid', 'dev'], { error: 'suid or dev' }), { error: 'a list of suid, dev' }).optional(),
    size: size.optional(),
  },
  'a mapping with at least the layer',
);

/** Settings of `thinlayer snapshotter` (containerd's snapshots), which apply does not read. */
const snapshotter = mapping(
  {
    writableSize: size.optional(),
  },
  'a mapping (writableSize)',
);

/** The whole document. */
export const manifestDocument = mapping(
  {
    version: z.literal(1, { error: '1 (the only manifest version)' }).optional(),
    pool,
    layers: z.record(z.string(), layer.nullable(), { error: 'a mapping of layer names to layers' }).nullable().optional(),
    devices: z.record(z.string(), device, { error: 'a mapping of device names to devices' }).nullable().optional(),
    snapshotter: snapshotter.nullable().optional(),
  },
  'a mapping with at least a pool',
);

/** Every shape problem of `value`, one per unknown key. */
export function shapeProblems(value: unknown): ManifestProblem[] {
  const result = manifestDocument.safeParse(value);
  if (result.success) return [];
  const problems: ManifestProblem[] = [];
  for (const issue of result.error.issues) {
    const path = issue.path.filter((s): s is string | number => typeof s !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push({ path: [...path, key], expected: issue.message, got: describeValue(key) });
    } else {
      problems.push({ path, expected: issue.message, got: describeValue(valueAt(value, path)) });
    }
  }
  return problems;
}

function valueAt(value: unknown, path: DocPath): unknown {
  let node = value;
  for (const segment of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string | number, unknown>)[segment];
  }
  return node;
}
