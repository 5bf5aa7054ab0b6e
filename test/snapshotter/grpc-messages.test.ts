// The snapshotter's typed gRPC messages (src/snapshotter/grpc-messages.ts) are written by hand: this
// checks each one's fields against the message of containerd's .proto it stands for, as proto-loader
// reads it, so a field renamed, added or dropped on either side fails here. The field lists are
// typed by the interfaces (`satisfies`), so a list naming a field the interface lacks fails tsc.

import { describe, it, expect } from 'vitest';
import { join } from 'node:path';
import { loadSync } from '@grpc/proto-loader';
import { protoRoot, SNAPSHOTS_PROTO } from '../../src/snapshotter/proto.ts';
import type * as M from '../../src/snapshotter/grpc-messages.ts';

type Fields<T> = Array<keyof T>;

/** Each .proto message, and the fields of the interface that stands for it. */
const TYPED = {
  PrepareSnapshotRequest: ['snapshotter', 'key', 'parent', 'labels'] satisfies Fields<M.PrepareRequest>,
  ViewSnapshotRequest: ['snapshotter', 'key', 'parent', 'labels'] satisfies Fields<M.PrepareRequest>,
  MountsRequest: ['snapshotter', 'key'] satisfies Fields<M.KeyRequest>,
  RemoveSnapshotRequest: ['snapshotter', 'key'] satisfies Fields<M.KeyRequest>,
  StatSnapshotRequest: ['snapshotter', 'key'] satisfies Fields<M.KeyRequest>,
  UsageRequest: ['snapshotter', 'key'] satisfies Fields<M.KeyRequest>,
  CommitSnapshotRequest: ['snapshotter', 'name', 'key', 'labels'] satisfies Fields<M.CommitRequest>,
  Info: ['name', 'parent', 'kind', 'created_at', 'updated_at', 'labels'] satisfies Fields<M.InfoMessage>,
  UpdateSnapshotRequest: ['snapshotter', 'info', 'update_mask'] satisfies Fields<M.UpdateRequest>,
  ListSnapshotsRequest: ['snapshotter', 'filters'] satisfies Fields<M.ListRequest>,
  CleanupRequest: ['snapshotter'] satisfies Fields<Pick<M.KeyRequest, 'snapshotter'>>,
  MountsResponse: ['mounts'] satisfies Fields<M.MountsResponse>,
  PrepareSnapshotResponse: ['mounts'] satisfies Fields<M.MountsResponse>,
  ViewSnapshotResponse: ['mounts'] satisfies Fields<M.MountsResponse>,
  StatSnapshotResponse: ['info'] satisfies Fields<M.InfoResponse>,
  UpdateSnapshotResponse: ['info'] satisfies Fields<M.InfoResponse>,
  ListSnapshotsResponse: ['info'] satisfies Fields<M.ListResponse>,
  UsageResponse: ['size', 'inodes'] satisfies Fields<M.UsageResponse>,
};

describe('the typed gRPC messages', () => {
  const root = protoRoot();
  const definition = loadSync(join(root, SNAPSHOTS_PROTO), { includeDirs: [root], keepCase: true });
  const fieldsOf = (message: string): string[] => {
    const type = definition[`containerd.services.snapshots.v1.${message}`] as { type?: { field?: Array<{ name: string }> } } | undefined;
    if (!type?.type?.field) throw new Error(`no message ${message} in ${SNAPSHOTS_PROTO}`);
    return type.type.field.map((f) => f.name).sort();
  };

  it('have exactly the fields of the .proto messages they stand for', () => {
    for (const [message, fields] of Object.entries(TYPED)) expect([...fields].sort(), message).toEqual(fieldsOf(message));
  });

  it('cover every request and response of the service that carries fields', () => {
    const service = definition['containerd.services.snapshots.v1.Snapshots'] as Record<
      string,
      { requestType: { type: { name: string } }; responseType: { type: { name: string } } }
    >;
    const carried = new Set<string>();
    for (const method of Object.values(service))
      for (const t of [method.requestType.type, method.responseType.type]) if (t.name !== 'Empty') carried.add(t.name);
    const withFields = [...carried].filter((name) => fieldsOf(name).length > 0);
    expect(withFields.filter((name) => !(name in TYPED)).sort()).toEqual([]);
  });
});
