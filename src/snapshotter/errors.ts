// The errors of containerd's snapshot API, as gRPC status codes that containerd's errdefs
// (FromGRPC) turns back into ErrNotFound, ErrAlreadyExists, ErrFailedPrecondition and
// ErrInvalidArgument (ResourceExhausted, a pool below pool.minFree, reaches containerd with its message). Thrown by the service; the server maps each to its code, and any other error
// (a kernel error, a bug) to Unknown/Internal with its message.

import { status as GrpcStatus } from '@grpc/grpc-js';

export type SnapshotErrorKind = 'not-found' | 'already-exists' | 'failed-precondition' | 'invalid-argument' | 'unavailable' | 'resource-exhausted';

export const GRPC_CODE: Record<SnapshotErrorKind, GrpcStatus> = {
  'not-found': GrpcStatus.NOT_FOUND,
  'already-exists': GrpcStatus.ALREADY_EXISTS,
  'failed-precondition': GrpcStatus.FAILED_PRECONDITION,
  'invalid-argument': GrpcStatus.INVALID_ARGUMENT,
  unavailable: GrpcStatus.UNAVAILABLE,
  'resource-exhausted': GrpcStatus.RESOURCE_EXHAUSTED,
};

export class SnapshotError extends Error {
  constructor(
    readonly kind: SnapshotErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'SnapshotError';
  }
}

export const notFound = (what: string) => new SnapshotError('not-found', `${what}: not found`);
export const alreadyExists = (what: string) => new SnapshotError('already-exists', `${what}: already exists`);
