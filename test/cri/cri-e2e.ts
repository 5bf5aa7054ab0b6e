// In the VM (test/vm/scenarios/cri.mjs, bundled on the host into test/vm/.work/cri-e2e.mjs): the
// kubelet's side of containerd's CRI plugin, with containerd's snapshotter set to thinlayer.
// test/cri/guest-cri.sh starts, kills and restarts the processes; this drives the calls and checks
// their answers. Each step prints `TL-CRI KEY=VALUE` lines for the host, and on a failed check
// `TL-CRI-FAIL why` and exit status 1.
//
//   cri-e2e.mjs basic CTD_SOCKET SNAP_SOCKET IMAGE SANDBOX_IMAGE IMAGE_FS_PATH MESSAGE
//   cri-e2e.mjs pods N CTD_SOCKET IMAGE MESSAGE        N pods at once, listed, then removed at once
//   cri-e2e.mjs start-pods N CTD_SOCKET IMAGE          N pods at once; failures are reported, not fatal
//   cri-e2e.mjs converge CTD_SOCKET IMAGE MESSAGE      list, remove every pod, one pod again, removed
//   cri-e2e.mjs remove-images CTD_SOCKET SNAP_SOCKET IMAGE...   RemoveImage; waits until thinlayer holds no k8s.io snapshot

import { existsSync, statSync } from 'node:fs';
import { type CriClient, connectCri, removeAllPods, removePod, startPod } from './cri-client.ts';
import { snapshotterUsage } from './snapshotter-usage.ts';

const NAMESPACE = 'k8s.io';
const SLEEP = ['/bin/sleep', '100000'];
const WRITE_MIB = 8;

const say = (key: string, value: unknown) => console.log(`TL-CRI ${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`);

class CheckFailed extends Error {}
function check(ok: boolean, why: string): asserts ok {
  if (!ok) throw new CheckFailed(why);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` until it returns a value (not undefined), or fails with `what` after `ms`. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, ms = 90_000): Promise<T> {
  const end = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const got = await probe();
      if (got !== undefined) return got;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new CheckFailed(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await sleep(500);
  }
}

// The test VM's guest runs chrooted from its initramfs (test/vm/init.sh), and the initramfs root
// cannot be pivoted away: runc moves a container's root over the chroot's own mount instead, and a
// process that ExecSync starts joins the container's mount namespace at that namespace's root, the
// initramfs. TL_CRI_EXEC_ROOT (the chroot's path, /mnt) makes ExecSync enter the container's root
// with the initramfs's static busybox first. On a node (no chroot) it is unset.
const EXEC_ROOT = process.env.TL_CRI_EXEC_ROOT ?? '';
const inRoot = (cmd: string[]) => (EXEC_ROOT ? ['/bin/busybox', 'chroot', EXEC_ROOT, ...cmd] : cmd);

async function exec(cri: CriClient, containerId: string, cmd: string[]): Promise<string> {
  const r = await cri.execSync({ containerId, cmd: inRoot(cmd), timeout: 120 });
  check(r.exitCode === 0, `ExecSync ${JSON.stringify(cmd)} exited ${r.exitCode}: ${r.stderr.toString()}`);
  return r.stdout.toString().trim();
}

async function basic(ctdSocket: string, snapSocket: string, image: string, sandboxImage: string, imageFsPath: string, message: string) {
  const cri = connectCri(ctdSocket);
  try {
    const v = await cri.version({ version: 'v1' });
    say('version', `${v.runtimeName} ${v.runtimeVersion} api ${v.runtimeApiVersion}`);
    check(v.runtimeName === 'containerd', `Version names runtime ${v.runtimeName}`);

    const st = await cri.status({});
    const conditions = Object.fromEntries((st.status?.conditions ?? []).map((c) => [c.type, c.status]));
    say('status', conditions);
    check(conditions.RuntimeReady === true, `Status: RuntimeReady is ${conditions.RuntimeReady}`);

    const { images } = await cri.listImages({});
    const tags = images.flatMap((i) => i.repoTags);
    say('images', tags.sort().join(' '));
    check(tags.includes(image) && tags.includes(sandboxImage), `ListImages lacks ${image} or ${sandboxImage}: ${tags.join(', ')}`);

    // ImageFsInfo: the CRI plugin sums the Usage of every snapshot its snapshotter holds in k8s.io
    // (refreshed every stats_collect_period); the kubelet reads capacity and free space with statfs
    // on the mountpoint, which must therefore exist.
    let seen = '';
    const { fs, figures } = await waitFor('ImageFsInfo to report the snapshots thinlayer holds', async () => {
      const figures = await snapshotterUsage(snapSocket, NAMESPACE);
      const r = await cri.imageFsInfo({});
      const used = r.imageFilesystems[0]?.usedBytes?.value ?? 0;
      const sum = figures.reduce((s, f) => s + f.usedBytes, 0);
      seen = `ImageFsInfo ${used} bytes, thinlayer's Usage ${sum} bytes over ${figures.map((f) => `${f.key} ${f.kind} ${f.usedBytes}`).join(', ')}`;
      return used === sum ? { fs: r.imageFilesystems[0], figures } : undefined;
    }).catch((e) => {
      throw new CheckFailed(`${e.message}; last seen: ${seen}`);
    });
    const thinlayerSum = figures.reduce((s, f) => s + f.usedBytes, 0);
    say('imagefs-mountpoint', fs.fsId?.mountpoint ?? '');
    say('imagefs-used-bytes', String(fs.usedBytes?.value));
    say('thinlayer-usage-bytes', String(thinlayerSum));
    say('thinlayer-snapshots', String(figures.length));
    check(fs.fsId?.mountpoint === imageFsPath, `ImageFsInfo's mountpoint is ${fs.fsId?.mountpoint}, expected ${imageFsPath}`);
    check(
      existsSync(imageFsPath) && statSync(imageFsPath).isDirectory(),
      `ImageFsInfo's mountpoint ${imageFsPath} is not a directory: the kubelet's statfs of it fails`,
    );
    check(thinlayerSum > 0, 'thinlayer reports no bytes used by the imported images');

    const t0 = Date.now();
    const pod = await startPod(cri, 'basic', image, SLEEP);
    say('pod-start-ms', String(Date.now() - t0));
    const { items } = await cri.listPodSandbox({});
    check(items.length === 1 && items[0].state === 'SANDBOX_READY', `ListPodSandbox: ${JSON.stringify(items)}`);
    const { containers } = await cri.listContainers({});
    check(containers.length === 1 && containers[0].state === 'CONTAINER_RUNNING', `ListContainers: ${JSON.stringify(containers)}`);

    const read = await exec(cri, pod.containerId, ['/bin/cat', '/etc/tl-message']);
    say('exec-read', read);
    check(read === message, `a file of the image reads "${read}", expected "${message}"`);
    const written = await exec(cri, pod.containerId, ['/bin/sh', '-c', 'echo written-in-root > /tl-root-write && /bin/cat /tl-root-write']);
    say('exec-write', written);
    check(written === 'written-in-root', `a write in the root reads back "${written}"`);
    await exec(cri, pod.containerId, ['/bin/busybox', 'dd', 'if=/dev/urandom', 'of=/tl-big', 'bs=1048576', `count=${WRITE_MIB}`]);
    await exec(cri, pod.containerId, ['/bin/sync']);

    // ContainerStats: the writable layer's bytes are the Usage of the container's snapshot.
    const own = async () => (await snapshotterUsage(snapSocket, NAMESPACE)).find((f) => f.key.endsWith(`/${pod.containerId}`));
    const mine = await waitFor('thinlayer to list the container snapshot', own);
    const layers = (await snapshotterUsage(snapSocket, NAMESPACE)).filter((f) => f.kind === 'COMMITTED');
    const stats = await waitFor("ContainerStats to report the snapshot's Usage", async () => {
      const now = await own();
      const r = await cri.containerStats({ containerId: pod.containerId });
      const used = r.stats?.writableLayer?.usedBytes?.value;
      return now && used === now.usedBytes && used >= mine.usedBytes ? used : undefined;
    });
    say('writable-layer-bytes', String(stats));
    // A thin snapshot maps its parent's blocks too: the figure includes the image's own bytes.
    say('image-layer-bytes', layers.map((f) => f.usedBytes).join(' '));
    check(stats >= WRITE_MIB * 1048576, `the writable layer's ${stats} bytes do not hold the ${WRITE_MIB} MiB written in it`);

    await cri.stopContainer({ containerId: pod.containerId, timeout: 0 });
    await cri.removeContainer({ containerId: pod.containerId });
    await cri.stopPodSandbox({ podSandboxId: pod.podId });
    await cri.removePodSandbox({ podSandboxId: pod.podId });
    check((await cri.listPodSandbox({})).items.length === 0, 'a pod is still listed after RemovePodSandbox');
    check((await cri.listContainers({})).containers.length === 0, 'a container is still listed after RemoveContainer');
    await waitFor("containerd's garbage collector to remove the container's snapshot from thinlayer", async () => ((await own()) ? undefined : true));
    say('basic', 'ok');
  } finally {
    cri.close();
  }
}

async function pods(n: number, ctdSocket: string, image: string, message: string) {
  const cri = connectCri(ctdSocket);
  try {
    const t0 = Date.now();
    const started = await Promise.all(Array.from({ length: n }, (_, i) => startPod(cri, `many-${i}`, image, SLEEP, { batch: 'many' })));
    say(`pods-${n}-start-ms`, String(Date.now() - t0));
    const { items } = await cri.listPodSandbox({ filter: { labelSelector: { batch: 'many' } } });
    check(
      items.filter((p) => p.state === 'SANDBOX_READY').length === n,
      `${n} pods started, ${items.length} listed: ${JSON.stringify(items.map((p) => p.state))}`,
    );
    const running = (await cri.listContainers({})).containers.filter((c) => c.state === 'CONTAINER_RUNNING');
    check(running.length === n, `${running.length} containers running, expected ${n}`);
    for (const p of [started[0], started[n - 1]]) check((await exec(cri, p.containerId, ['/bin/cat', '/etc/tl-message'])) === message, 'a pod reads its image');
    const t1 = Date.now();
    await Promise.all(started.map((p) => removePod(cri, p.podId)));
    say(`pods-${n}-remove-ms`, String(Date.now() - t1));
    check((await cri.listPodSandbox({})).items.length === 0, 'pods are still listed after their removal');
    say(`pods-${n}`, 'ok');
  } finally {
    cri.close();
  }
}

async function startPods(n: number, ctdSocket: string, image: string) {
  const cri = connectCri(ctdSocket);
  try {
    const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => startPod(cri, `crash-${i}`, image, SLEEP, { batch: 'crash' })));
    const failed = results.filter((r) => r.status === 'rejected') as PromiseRejectedResult[];
    say(`start-pods-${n}-ok`, String(n - failed.length));
    say(`start-pods-${n}-failed`, String(failed.length));
    for (const f of failed.slice(0, 3)) say('start-pods-error', String((f.reason as Error).message).split('\n')[0]);
  } finally {
    cri.close();
  }
}

async function converge(ctdSocket: string, image: string, message: string) {
  const cri = connectCri(ctdSocket);
  try {
    const listed = (await cri.listPodSandbox({})).items;
    say('converge-listed', String(listed.length));
    say('converge-removed', String(await removeAllPods(cri)));
    // Containers whose pod is gone (CreateContainer answered after a crash) are removed too.
    for (const c of (await cri.listContainers({})).containers) await cri.removeContainer({ containerId: c.id });
    check((await cri.listPodSandbox({})).items.length === 0, 'pods are still listed after removing every one');
    const pod = await startPod(cri, 'again', image, SLEEP);
    const read = await exec(cri, pod.containerId, ['/bin/cat', '/etc/tl-message']);
    check(read === message, `a new pod reads "${read}"`);
    const written = await exec(cri, pod.containerId, ['/bin/sh', '-c', 'echo again > /tl-again && /bin/cat /tl-again']);
    check(written === 'again', `a new pod's write reads back "${written}"`);
    await removePod(cri, pod.podId);
    check((await cri.listPodSandbox({})).items.length === 0, 'the new pod is still listed after its removal');
    say('converge', 'ok');
  } finally {
    cri.close();
  }
}

async function removeImages(ctdSocket: string, snapSocket: string, images: string[]) {
  const cri = connectCri(ctdSocket);
  try {
    for (const image of images) await cri.removeImage({ image: { image } });
    const left = (await cri.listImages({})).images.flatMap((i) => i.repoTags);
    check(!images.some((i) => left.includes(i)), `ListImages still lists ${left.join(', ')} after RemoveImage`);
    const t0 = Date.now();
    await waitFor("containerd's garbage collector to remove the images' snapshots from thinlayer", async () =>
      (await snapshotterUsage(snapSocket, NAMESPACE)).length === 0 ? true : undefined,
    );
    say('images-snapshots-gone-ms', String(Date.now() - t0));
    say('remove-images', 'ok');
  } finally {
    cri.close();
  }
}

async function main(argv: string[]) {
  const [step, ...a] = argv;
  if (step === 'basic') return basic(a[0], a[1], a[2], a[3], a[4], a[5]);
  if (step === 'pods') return pods(Number(a[0]), a[1], a[2], a[3]);
  if (step === 'start-pods') return startPods(Number(a[0]), a[1], a[2]);
  if (step === 'converge') return converge(a[0], a[1], a[2]);
  if (step === 'remove-images') return removeImages(a[0], a[1], a.slice(2));
  throw new Error(`unknown step ${step}`);
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e) => {
    console.log(`TL-CRI-FAIL ${argvStep()}: ${e instanceof CheckFailed ? e.message : (e?.stack ?? e)}`);
    process.exit(1);
  },
);

function argvStep() {
  return process.argv[2] ?? '';
}
