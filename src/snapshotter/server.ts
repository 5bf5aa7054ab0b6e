// The gRPC face of the service: containerd.services.snapshots.v1.Snapshots on a unix socket. Each
// handler reads the request's `containerd-namespace` metadata (its own key space; none is the
// empty namespace), calls the service and maps its errors to the codes containerd's errdefs reads.

import {
  Server,
  ServerCredentials,
  status as GrpcStatus,
  type Metadata,
  type ServiceError,
  type sendUnaryData,
  type ServerUnaryCall,
  type ServerWritableStream,
} from '@grpc/grpc-js';
import type { SnapshotService, Info } from './service.ts';
import { SnapshotError, GRPC_CODE } from './errors.ts';
import { toTimestamp } from './clock.ts';
import { loadSnapshotsService } from './proto.ts';
import type { Reporter } from '../messages/message-port.ts';
import { hasCode, isKernelError } from '../errors/index.ts';
import type {
  CommitRequest,
  Empty,
  InfoMessage,
  InfoResponse,
  KeyRequest,
  ListRequest,
  ListResponse,
  MountsResponse,
  PrepareRequest,
  UpdateRequest,
  UsageResponse,
} from './grpc-messages.ts';

export const NAMESPACE_HEADER = 'containerd-namespace';
const LIST_BATCH = 100;

/**
 * The namespace as containerd's own servers read it (namespaces.fromGRPCHeader): the first value of
 * the header. A client that set the namespace twice (its own context's, then a case's) sends several
 * values, which reach a server as several entries or as one string joined with commas (HTTP/2 folds
 * repeated headers that way); either way the first one counts. A namespace never holds a comma
 * (containerd's identifiers are letters, digits, `.`, `_` and `-`), so splitting is safe.
 */
export function namespaceOf(metadata: Metadata): string {
  const v = metadata.get(NAMESPACE_HEADER)[0];
  if (v === undefined) return '';
  return String(v).split(',')[0].trim();
}

/**
 * The key space a call works in. containerd's metadata store names a snapshot on its snapshotter
 * `NS/SEQ/NAME` and normally sends no header, but a call from a client inside containerd's own
 * process (its CRI plugin: Usage for ImageFsInfo, Prepare for CreateContainer) carries the
 * client's `containerd-namespace` header through to the proxy. Such a key is containerd's own,
 * already namespaced: it is served in the empty namespace, where the same snapshot's header-less
 * calls (ctr, the garbage collector's Remove) find it. Other keys stay in the header's namespace.
 */
export function keySpaceOf(metadata: Metadata, key: string): string {
  const ns = namespaceOf(metadata);
  if (ns === '') return ns;
  return key.startsWith(`${ns}/`) && /^\d+\//.test(key.slice(ns.length + 1)) ? '' : ns;
}

const KIND = { active: 'ACTIVE', view: 'VIEW', committed: 'COMMITTED' } as const;

function infoMessage(i: Info): InfoMessage {
  return { name: i.name, parent: i.parent, kind: KIND[i.kind], created_at: toTimestamp(i.created), updated_at: toTimestamp(i.updated), labels: i.labels };
}

function toStatus(e: unknown): Partial<ServiceError> {
  if (e instanceof SnapshotError) return { code: GRPC_CODE[e.kind], details: e.message };
  // The state dir's lock held by another command (an apply) for longer than a call waits: try again.
  if (hasCode(e, 'E_LOCKED', 'E_LOG_FOREIGN')) return { code: GrpcStatus.UNAVAILABLE, details: (e as Error).message };
  if (isKernelError(e, 'ENOSPC')) return { code: GrpcStatus.RESOURCE_EXHAUSTED, details: (e as Error).message };
  return { code: GrpcStatus.UNKNOWN, details: e instanceof Error ? e.message : String(e) };
}

export function buildServer(service: SnapshotService, reporter: Reporter): Server {
  const { service: definition } = loadSnapshotsService();
  const unary =
    <Req, Res>(method: string, keyOf: (r: Req) => string, work: (ns: string, r: Req) => Promise<Res> | Res) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>) => {
      Promise.resolve()
        .then(() => work(keySpaceOf(call.metadata, keyOf(call.request)), call.request))
        .then(
          (res) => callback(null, res),
          (e) => {
            const st = toStatus(e);
            if (!(e instanceof SnapshotError))
              reporter.notify({ code: 'snapshotter.request-failed', method, key: keyOf(call.request), error: st.details ?? '' });
            callback(st as ServiceError);
          },
        );
    };
  const server = new Server();
  server.addService(definition, {
    Prepare: unary(
      'Prepare',
      (r: PrepareRequest) => r.key,
      async (ns, r): Promise<MountsResponse> => ({ mounts: await service.prepare(ns, r.key, r.parent, r.labels ?? {}, 'active') }),
    ),
    View: unary(
      'View',
      (r: PrepareRequest) => r.key,
      async (ns, r): Promise<MountsResponse> => ({ mounts: await service.prepare(ns, r.key, r.parent, r.labels ?? {}, 'view') }),
    ),
    Mounts: unary(
      'Mounts',
      (r: KeyRequest) => r.key,
      async (ns, r): Promise<MountsResponse> => ({ mounts: await service.mounts(ns, r.key) }),
    ),
    Commit: unary(
      'Commit',
      (r: CommitRequest) => r.key,
      async (ns, r): Promise<Empty> => (await service.commit(ns, r.name, r.key, r.labels ?? {}), {}),
    ),
    Remove: unary(
      'Remove',
      (r: KeyRequest) => r.key,
      async (ns, r): Promise<Empty> => (await service.remove(ns, r.key), {}),
    ),
    Stat: unary(
      'Stat',
      (r: KeyRequest) => r.key,
      (ns, r): InfoResponse => ({ info: infoMessage(service.stat(ns, r.key)) }),
    ),
    Update: unary(
      'Update',
      (r: UpdateRequest) => r.info?.name ?? '',
      async (ns, r): Promise<InfoResponse> => ({
        info: infoMessage(await service.update(ns, { name: r.info?.name ?? '', labels: r.info?.labels ?? {} }, r.update_mask?.paths ?? [])),
      }),
    ),
    Usage: unary(
      'Usage',
      (r: KeyRequest) => r.key,
      async (ns, r): Promise<UsageResponse> => {
        const u = await service.usage(ns, r.key);
        return { size: String(u.size), inodes: String(u.inodes) };
      },
    ),
    Cleanup: unary(
      'Cleanup',
      () => '',
      async (): Promise<Empty> => (await service.cleanup(), {}),
    ),
    List: (call: ServerWritableStream<ListRequest, ListResponse>) => {
      try {
        const ns = namespaceOf(call.metadata);
        const filters = call.request.filters ?? [];
        // What Stat, Mounts and Usage serve under this header (keySpaceOf), List lists too: with a
        // header, containerd's own NS/SEQ/NAME keys of that namespace live in the empty one.
        const own = ns === '' ? [] : service.list('', filters).filter((i) => keySpaceOf(call.metadata, i.name) === '');
        const infos = [...service.list(ns, filters), ...own];
        for (let i = 0; i < infos.length; i += LIST_BATCH) call.write({ info: infos.slice(i, i + LIST_BATCH).map(infoMessage) });
        call.end();
      } catch (e) {
        call.emit('error', toStatus(e));
      }
    },
  });
  return server;
}

/** Binds the server to `unix:PATH`. The caller makes sure the path is free and sets the umask. */
export function bindUnix(server: Server, socket: string): Promise<void> {
  return new Promise((resolve, reject) => server.bindAsync(`unix:${socket}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())));
}

/** Stops taking calls and lets those under way finish; after `graceMs`, cancels what is left. */
export function shutdown(server: Server, graceMs = 30_000): Promise<void> {
  return new Promise((resolve) => {
    const force = setTimeout(() => server.forceShutdown(), graceMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}
