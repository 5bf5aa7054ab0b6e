// A Container Runtime Interface client for tests, over @grpc/grpc-js: the kubelet's side of
// containerd's CRI plugin (runtime.v1, the subset in runtime-v1.proto). Every call is a promise
// with a deadline; a failed call rejects with grpc-js's ServiceError (`code`, `details`), so a
// test can require a given code and message (ResourceExhausted from a full pool, say).

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Client, credentials, loadPackageDefinition, Metadata, type ServiceClientConstructor, type ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

const PROTO = join('test', 'cri', 'runtime-v1.proto');

/** runtime-v1.proto, found by walking up from this module (the sources, or a bundle of them under the checkout). */
export function criProtoFile(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, PROTO))) return join(dir, PROTO);
    const up = dirname(dir);
    if (up === dir) throw new Error(`${PROTO} not found above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

export type NamespaceMode = 'POD' | 'CONTAINER' | 'NODE' | 'TARGET';
export type ContainerState = 'CONTAINER_CREATED' | 'CONTAINER_RUNNING' | 'CONTAINER_EXITED' | 'CONTAINER_UNKNOWN';

export interface PodSandboxConfig {
  metadata: { name: string; uid: string; namespace: string; attempt?: number };
  hostname?: string;
  logDirectory?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  linux?: {
    cgroupParent?: string;
    securityContext?: { namespaceOptions?: { network?: NamespaceMode; pid?: NamespaceMode; ipc?: NamespaceMode } };
  };
}

export interface ContainerConfig {
  metadata: { name: string; attempt?: number };
  image: { image: string };
  command?: string[];
  args?: string[];
  workingDir?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  logPath?: string;
}

export interface UInt64Value {
  value: number;
}

export interface FilesystemUsage {
  timestamp: number;
  fsId: { mountpoint: string } | null;
  usedBytes: UInt64Value | null;
  inodesUsed: UInt64Value | null;
}

export interface PodSandbox {
  id: string;
  metadata: { name: string; uid: string; namespace: string; attempt: number } | null;
  state: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  labels: Record<string, string>;
}

export interface Container {
  id: string;
  podSandboxId: string;
  metadata: { name: string; attempt: number } | null;
  state: ContainerState;
  labels: Record<string, string>;
}

export interface Image {
  id: string;
  repoTags: string[];
  repoDigests: string[];
  size: number;
  pinned: boolean;
}

/** The calls, named and shaped as in runtime.v1 (fields in lowerCamelCase, int64/uint64 as numbers, enums as their names). */
export interface CriClient {
  version(req?: { version?: string }): Promise<{ version: string; runtimeName: string; runtimeVersion: string; runtimeApiVersion: string }>;
  status(req?: { verbose?: boolean }): Promise<{
    status: { conditions: { type: string; status: boolean; reason: string; message: string }[] } | null;
    info: Record<string, string>;
  }>;
  runPodSandbox(req: { config: PodSandboxConfig; runtimeHandler?: string }): Promise<{ podSandboxId: string }>;
  stopPodSandbox(req: { podSandboxId: string }): Promise<object>;
  removePodSandbox(req: { podSandboxId: string }): Promise<object>;
  listPodSandbox(req?: { filter?: { id?: string; labelSelector?: Record<string, string> } }): Promise<{ items: PodSandbox[] }>;
  createContainer(req: { podSandboxId: string; config: ContainerConfig; sandboxConfig: PodSandboxConfig }): Promise<{ containerId: string }>;
  startContainer(req: { containerId: string }): Promise<object>;
  stopContainer(req: { containerId: string; timeout?: number }): Promise<object>;
  removeContainer(req: { containerId: string }): Promise<object>;
  listContainers(req?: { filter?: { id?: string; podSandboxId?: string; labelSelector?: Record<string, string> } }): Promise<{ containers: Container[] }>;
  execSync(req: { containerId: string; cmd: string[]; timeout?: number }): Promise<{ stdout: Buffer; stderr: Buffer; exitCode: number }>;
  containerStats(req: { containerId: string }): Promise<{ stats: { attributes: { id: string } | null; writableLayer: FilesystemUsage | null } | null }>;
  listImages(req?: { filter?: { image?: { image: string } } }): Promise<{ images: Image[] }>;
  removeImage(req: { image: { image: string } }): Promise<object>;
  imageFsInfo(req?: object): Promise<{ imageFilesystems: FilesystemUsage[]; containerFilesystems: FilesystemUsage[] }>;
  close(): void;
}

const RUNTIME_CALLS = [
  'Version',
  'Status',
  'RunPodSandbox',
  'StopPodSandbox',
  'RemovePodSandbox',
  'ListPodSandbox',
  'CreateContainer',
  'StartContainer',
  'StopContainer',
  'RemoveContainer',
  'ListContainers',
  'ExecSync',
  'ContainerStats',
] as const;
const IMAGE_CALLS = ['ListImages', 'RemoveImage', 'ImageFsInfo'] as const;

function unary(client: Client, method: string, deadlineMs: number) {
  return (req: object = {}) =>
    new Promise((resolve, reject) => {
      const fn = (client as unknown as Record<string, (...a: unknown[]) => void>)[method];
      fn.call(client, req, new Metadata(), { deadline: Date.now() + deadlineMs }, (err: ServiceError | null, res: unknown) =>
        err ? reject(err) : resolve(res),
      );
    });
}

/**
 * A client of the CRI services on `socket` (containerd's own socket: its CRI plugin serves there).
 * `deadlineMs` bounds each call; RunPodSandbox and CreateContainer under software emulation take
 * seconds each, many at once far longer.
 */
export function connectCri(socket: string, { deadlineMs = 240_000 }: { deadlineMs?: number } = {}): CriClient {
  const definition = loadSync(criProtoFile(), { keepCase: false, longs: Number, enums: String, defaults: true });
  const pkg = loadPackageDefinition(definition) as unknown as { runtime: { v1: Record<'RuntimeService' | 'ImageService', ServiceClientConstructor> } };
  const address = `unix://${socket}`;
  const runtime: Client = new pkg.runtime.v1.RuntimeService(address, credentials.createInsecure());
  const image: Client = new pkg.runtime.v1.ImageService(address, credentials.createInsecure());
  const calls: Record<string, unknown> = {};
  const lower = (m: string) => m[0].toLowerCase() + m.slice(1);
  for (const m of RUNTIME_CALLS) calls[lower(m)] = unary(runtime, m, deadlineMs);
  for (const m of IMAGE_CALLS) calls[lower(m)] = unary(image, m, deadlineMs);
  calls.close = () => {
    runtime.close();
    image.close();
  };
  return calls as unknown as CriClient;
}

/** A pod on the node's network (no CNI needed), as the kubelet describes a `hostNetwork: true` pod. */
export function hostNetworkPod(name: string, labels: Record<string, string> = {}): PodSandboxConfig {
  return {
    metadata: { name, uid: `uid-${name}`, namespace: 'default', attempt: 0 },
    // No hostname: a host-network pod shares the node's UTS namespace, and runc refuses to set one there.
    labels: { 'io.kubernetes.pod.name': name, ...labels },
    linux: { securityContext: { namespaceOptions: { network: 'NODE', pid: 'CONTAINER', ipc: 'POD' } } },
  };
}

export interface RunningPod {
  podId: string;
  containerId: string;
  config: PodSandboxConfig;
}

/** RunPodSandbox, CreateContainer and StartContainer: one pod with one container running `command` in `image`. */
export async function startPod(cri: CriClient, name: string, image: string, command: string[], labels: Record<string, string> = {}): Promise<RunningPod> {
  const config = hostNetworkPod(name, labels);
  const { podSandboxId } = await cri.runPodSandbox({ config });
  const { containerId } = await cri.createContainer({
    podSandboxId,
    config: { metadata: { name: 'main', attempt: 0 }, image: { image }, command, labels },
    sandboxConfig: config,
  });
  await cri.startContainer({ containerId });
  return { podId: podSandboxId, containerId, config };
}

/** What the kubelet does to delete a pod: stop and remove its containers, then stop and remove the sandbox. */
export async function removePod(cri: CriClient, podSandboxId: string): Promise<void> {
  const { containers } = await cri.listContainers({ filter: { podSandboxId } });
  for (const c of containers) {
    await cri.stopContainer({ containerId: c.id, timeout: 0 });
    await cri.removeContainer({ containerId: c.id });
  }
  await cri.stopPodSandbox({ podSandboxId });
  await cri.removePodSandbox({ podSandboxId });
}

/** Removes every pod the runtime lists (the kubelet's cleanup of pods it no longer wants). */
export async function removeAllPods(cri: CriClient): Promise<number> {
  const { items } = await cri.listPodSandbox({});
  for (const p of items) await removePod(cri, p.id);
  return items.length;
}
