// What a layer is made of, as plain data: a resolved source (src/layers resolves it, with its
// digests), and the chain of layer devices a manifest wants, by OCI chain id (src/plan/layer-chain.ts
// computes it). The log records them with the desired state, so they are the log's vocabulary too.

export interface ResolvedLayer {
  /** 'tar': an archive (plain, gzip or zstd, told by its first bytes); 'dir': a directory copied as a layer. */
  kind: 'tar' | 'dir';
  /** Absolute path of the archive, the OCI blob or the directory. */
  path: string;
  /** `sha256:HEX` of the uncompressed tar; for a directory, of the deterministic tar thinlayer makes of it. */
  diffId: string;
  /** `sha256:HEX` of the file as stored, when it is compressed (an OCI blob's descriptor digest). */
  compressedDigest?: string;
  /** Bytes read to apply it: the archive file's size, or a directory's total file content. */
  sizeBytes: number;
  /** How the layer is named in messages, e.g. `oci:img:v1 layer 2/3`. Defaults to the path. */
  label?: string;
  /** Archives: bytes of the uncompressed tar, as counted when it was checked (content-check.ts). */
  expandedBytes?: number;
  /** Archives: it holds device nodes or fifos. */
  deviceNodes?: boolean;
}

export interface LayerUnit {
  chainId: string;
  parentChainId: string | null;
  diffId: string;
  /** What to extract into the snapshot; null for an empty layer. */
  content: ResolvedLayer | null;
  /** For people: the manifest layer, and which part of it when a source expands to several layers. */
  label: string;
  allowDevices: boolean;
}

export interface LayerContent {
  /** Every layer device wanted, parents first, each chain id once. */
  units: LayerUnit[];
  /** The top chain id of each manifest layer: what its devices snapshot. */
  top: Record<string, string>;
}
