// The messages of containerd's Snapshots service (proto/containerd/services/snapshots/v1/snapshots.proto)
// as the server receives and sends them: proto-loader with keepCase (field names as in the .proto),
// defaults (absent strings '', maps {}, repeated fields [], messages null) and 64-bit integers as
// decimal strings.

import type { Mount } from './service.ts';

/** The key a request names (Prepare, View, Mounts, Remove, Stat, Usage). */
export interface KeyRequest {
  snapshotter: string;
  key: string;
}

/** Prepare and View. */
export interface PrepareRequest extends KeyRequest {
  parent: string;
  labels: Record<string, string>;
}

export interface CommitRequest extends KeyRequest {
  name: string;
  labels: Record<string, string>;
}

export interface Timestamp {
  seconds: string;
  nanos: number;
}

export interface InfoMessage {
  name: string;
  parent: string;
  kind: 'UNKNOWN' | 'VIEW' | 'ACTIVE' | 'COMMITTED';
  created_at: Timestamp | null;
  updated_at: Timestamp | null;
  labels: Record<string, string>;
}

export interface UpdateRequest {
  snapshotter: string;
  info: Partial<InfoMessage> | null;
  update_mask: { paths?: string[] } | null;
}

export interface ListRequest {
  snapshotter: string;
  filters: string[];
}

export interface MountsResponse {
  mounts: Mount[];
}

export interface InfoResponse {
  info: InfoMessage;
}

export interface ListResponse {
  info: InfoMessage[];
}

export interface UsageResponse {
  size: string;
  inodes: string;
}

export type Empty = Record<string, never>;
