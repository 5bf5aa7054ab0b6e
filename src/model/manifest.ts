// The manifest as the engine sees it after validation: every size in bytes, every default filled.
// The YAML form is documented in docs/manifest.md; src/manifest/load.ts turns one into the other.

/** The filesystems thinlayer makes on the base device (and so on every layer and device). */
export type Filesystem = 'ext4' | 'xfs';

export type DesiredDeviceState = 'created' | 'activated' | 'mounted';

/** Where a pool's data or metadata lives: a sparse file in the state dir, or a block device. */
export type Backing =
  | { kind: 'file'; file: string; sizeBytes: number } // file: relative to the state dir
  | { kind: 'device'; device: string }; // absolute /dev path

export interface PoolSpec {
  name: string;
  data: Backing;
  metadata: Backing;
  blockSizeBytes: number; // multiple of 64 KiB, 64 KiB..1 GiB
  baseSizeBytes: number; // virtual size of the base device and so of every snapshot
  filesystem: Filesystem;
  /** Refuse new snapshots when free data or metadata space falls below this fraction (0..1). */
  minFreeFraction: number;
  /**
   * How long I/O may wait on a pool out of data space before it fails (dm-thin's no_space_timeout),
   * so that a full pool never hangs a command for longer than this.
   */
  noSpaceTimeoutSeconds: number;
}

export interface LayerSpec {
  name: string;
  parent: string | null; // null: a snapshot of the base device
  /** Content: a tar/tar.gz/tar.zst file or a directory (absolute once loaded), or oci:PATH:TAG / oci:PATH@sha256:HEX. */
  source?: string;
  /** Let the layer's archive create device nodes and fifos (refused by default). */
  allowDevices?: boolean;
  /** Mount the layer here, read-only, for inspection. */
  mountpoint?: string | null;
}

export interface DeviceSpec {
  name: string;
  layer: string;
  state: DesiredDeviceState;
  mountpoint: string | null; // absolute; required when state is 'mounted'
  sizeBytes: number | null; // null: the pool's base size
  /** What the mount may honour: setuid bits and file capabilities, device nodes (nosuid, nodev otherwise). */
  mountOptions?: MountOption[];
}

export type MountOption = 'suid' | 'dev';

/** What `thinlayer snapshotter` reads besides the pool (src/snapshotter/root-size.ts). */
export interface SnapshotterSpec {
  /** The least size of an active (writable) snapshot; a parent already as large keeps its size. */
  writableSizeBytes: number | null;
}

export interface Manifest {
  /** Absolute path of the file it came from ('' when built in memory). */
  file: string;
  version: 1;
  pool: PoolSpec;
  /** Absent when the manifest has no `snapshotter` key (apply does not read it). */
  snapshotter?: SnapshotterSpec;
  /** Topologically ordered: every parent before its children. */
  layers: LayerSpec[];
  devices: DeviceSpec[];
}
