// The kinds of thin device thinlayer makes: the base, a layer (by chain id), a device the manifest
// names, and a containerd snapshot.

/** `snapshot`: a containerd snapshot made by `thinlayer snapshotter` (src/snapshotter), never by the manifest. */
export type ThingKind = 'base' | 'layer' | 'device' | 'snapshot';
