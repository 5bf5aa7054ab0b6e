// A Kubernetes node's path to thinlayer: Debian's containerd with its CRI plugin on and
// `snapshotter = "thinlayer"`, driven as the kubelet drives it by the project's own CRI client
// (test/cri: runtime.v1 over @grpc/grpc-js). One boot (test/cri/guest-cri.sh): Version, Status,
// ListImages, ImageFsInfo (its figure equal to the sum of thinlayer's Usage, its mountpoint the
// snapshotter's state dir), a host-network pod's RunPodSandbox, CreateContainer, StartContainer,
// ExecSync (a file of the image; a write in the root), ContainerStats (the writable layer's
// bytes are thinlayer's Usage of the container's snapshot) and its removal; then pods at once; a
// SIGKILL of the snapshotter while pods start; a restart of containerd; after each, pods listed,
// removed and made again, doctor clean; RemoveImage, every snapshot removed, the pool's base alone.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';
import { writeOciArchive } from '../../containerd/oci-image.mjs';
import { reportedValue, thinIdProblems } from '../scenario-harness.mjs';
import { repoRoot, workDir } from '../vm.mjs';

export const name = 'cri';

const IMAGE = 'docker.io/library/tlcri:1';
const SANDBOX_IMAGE = 'registry.local/tl-pause:1';
const MESSAGE = 'hello from a pod on thinlayer';
const PODS = 20;

/** Every value of `TL-CRI KEY=…` lines, in order. */
function criValues(output, key) {
  return output
    .split('\n')
    .filter((l) => l.startsWith(`TL-CRI ${key}=`))
    .map((l) => l.slice(`TL-CRI ${key}=`.length).trim());
}

function failures(output) {
  return output.split('\n').filter((l) => /^TL-(CRI|CTD)-(FAIL|SNAPLOG|CTDLOG)/.test(l));
}

function requireHostTools() {
  for (const tool of ['containerd', 'ctr', 'runc', 'containerd-shim-runc-v2']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'pipe' });
    } catch {
      throw new Error(`${tool} is not installed on the host (the guest runs the host's): install Debian's containerd and runc`);
    }
  }
}

export async function run({ bootVm, log }) {
  requireHostTools();
  // The guest cannot compile TypeScript quickly: the driver is bundled here, its gRPC packages
  // left to the checkout's node_modules.
  await build({
    entryPoints: [path.join(repoRoot, 'test', 'cri', 'cri-e2e.ts')],
    outfile: path.join(workDir, 'cri-e2e.mjs'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    external: ['@grpc/grpc-js', '@grpc/proto-loader'],
    logLevel: 'warning',
  });
  const image = writeOciArchive({
    out: path.join(workDir, 'cri', 'tlcri.tar'),
    name: IMAGE,
    layers: 2,
    message: MESSAGE,
    scratch: path.join(workDir, 'cri', 'tlcri'),
  });
  const sandbox = writeOciArchive({
    out: path.join(workDir, 'cri', 'tl-pause.tar'),
    name: SANDBOX_IMAGE,
    layers: 1,
    message: 'pause',
    salt: 'pause',
    cmd: ['/bin/sleep', '1000000'],
    scratch: path.join(workDir, 'cri', 'tl-pause'),
  });
  const disk = path.join(workDir, `cri-${process.pid}.img`);
  try {
    const boot = await bootVm({
      command: `bash test/cri/guest-cri.sh ${image.out} ${IMAGE} ${sandbox.out} ${SANDBOX_IMAGE} '${MESSAGE}' ${PODS}`,
      freshDisk: true,
      disk,
      timeoutMs: 30 * 60_000,
    });
    const out = boot.output;
    const problems = [];
    if (boot.exitCode !== 0) problems.push(`the boot ended with status ${boot.exitCode}:\n${failures(out).join('\n')}`);
    for (const [key, count] of [
      ['basic', 1],
      [`pods-${PODS}`, 1],
      ['converge', 2],
      ['remove-images', 1],
    ]) {
      const got = criValues(out, key).filter((v) => v === 'ok').length;
      if (got !== count) problems.push(`step ${key}: ${got} of ${count} passed`);
    }
    const mountpoint = criValues(out, 'imagefs-mountpoint')[0];
    if (mountpoint !== '/run/tl-disk/cri/containerd/io.containerd.snapshotter.v1.thinlayer')
      problems.push(`ImageFsInfo's mountpoint is ${mountpoint}, expected the snapshotter's state dir under containerd's root`);
    // The pods started while the snapshotter was killed were listed and removed afterwards.
    const listed = criValues(out, 'converge-listed').map(Number);
    if (listed[1] !== 2) problems.push(`after the containerd restart ${listed[1]} pods were listed, expected the 2 running before it`);
    if (reportedValue(out, 'snapshotter-exit') !== '0') problems.push(`SIGTERM ended the snapshotter with status ${reportedValue(out, 'snapshotter-exit')}`);
    for (const when of ['basic', 'pods', 'after-kill', 'after-restart', 'end']) {
      let doctor = null;
      try {
        doctor = JSON.parse(reportedValue(out, `doctor-${when}`) ?? '');
      } catch {
        problems.push(`doctor (${when}) printed no JSON: ${reportedValue(out, `doctor-${when}`)}`);
        continue;
      }
      problems.push(...thinIdProblems(doctor).map((p) => `${when}: ${p}`));
      if (when === 'end' && doctor.thinIds?.length !== 1)
        problems.push(`the pool holds thin ids ${JSON.stringify(doctor.thinIds)} after RemoveImage of every image; expected the base alone`);
    }
    if (problems.length > 0) throw new Error(`cri:\n  ${problems.join('\n  ')}`);
    const v = (k) => criValues(out, k)[0];
    log(
      `${v('version')}; ImageFsInfo ${v('imagefs-used-bytes')} bytes = thinlayer's Usage of ${v('thinlayer-snapshots')} snapshots; pod started in ${v('pod-start-ms')} ms; writable layer ${v('writable-layer-bytes')} bytes (image layers ${v('image-layer-bytes')})`,
    );
    log(
      `${PODS} pods at once: started in ${v(`pods-${PODS}-start-ms`)} ms, removed in ${v(`pods-${PODS}-remove-ms`)} ms; SIGKILL with ${reportedValue(out, 'killed-with-snapshots')} new snapshots: ${v('start-pods-6-ok')} of 6 pods started, ${v('start-pods-6-failed')} failed; converged after the kill and after the containerd restart; images' snapshots gone ${v('images-snapshots-gone-ms')} ms after RemoveImage; doctor clean`,
    );
  } finally {
    fs.rmSync(disk, { force: true });
  }
}
