// Debian's containerd, ctr and runc on thinlayer's snapshotter (the proxy plugin `thinlayer`), with
// the kernel backend, over two boots. Boot 1: `ctr images import --snapshotter thinlayer` of an
// OCI archive written here (busybox-static and three layers), `ctr run --rm` whose output is
// checked (the image's files, and a write in the container's own snapshot), then a SIGKILL of the
// snapshotter, a restart, and `ctr run` again; a container is kept with a file written in its
// active snapshot, and the power is cut (qemu killed). Boot 2: both restarted on the same disk,
// `ctr run` again, the kept container's task started on its snapshot finds the file written
// before the cut, then containers and image are removed (containerd's garbage collector removes
// the snapshots through the proxy), SIGTERM stops the snapshotter with status 0, and doctor finds
// no thin id leaked or lost and the pool holding the shared base alone.

import fs from 'node:fs';
import path from 'node:path';
import { writeOciArchive } from '../../containerd/oci-image.mjs';
import { reportedValue, thinIdProblems } from '../scenario-harness.mjs';
import { workDir } from '../vm.mjs';

export const name = 'containerd-ctr';

const IMAGE = 'docker.io/library/tlbox:1';
const MESSAGE = 'hello from a thinlayer snapshot';

function expectValue(output, key, expected, problems) {
  const got = reportedValue(output, key);
  if (got !== expected) problems.push(`${key}: expected "${expected}", got ${got === null ? 'no line' : `"${got}"`}`);
}

function failures(output) {
  return output.split('\n').filter((l) => l.startsWith('TL-CTD-FAIL') || l.startsWith('TL-CTD-SNAPLOG') || l.startsWith('TL-CTD-CTDLOG'));
}

export async function run({ bootVm, log }) {
  const image = writeOciArchive({
    out: path.join(workDir, 'containerd', 'tlbox.tar'),
    name: IMAGE,
    layers: 3,
    message: MESSAGE,
    scratch: path.join(workDir, 'containerd', 'tlbox'),
  });
  const disk = path.join(workDir, `containerd-ctr-${process.pid}.img`);
  try {
    const first = await bootVm({
      command: `bash test/containerd/guest-ctr.sh first ${image.out} ${IMAGE}`,
      freshDisk: true,
      disk,
      killWhenOutputMatches: /^TL-CTD power-cut-now$/,
      timeoutMs: 15 * 60_000,
    });
    let problems = [];
    if (!first.killed) problems.push(`boot 1 ended (exit ${first.exitCode}) before the power cut:\n${failures(first.output).join('\n')}`);
    expectValue(first.output, 'images', IMAGE, problems);
    expectValue(first.output, 'snapshots', String(image.layers.length), problems);
    expectValue(first.output, 'run-1', MESSAGE, problems);
    expectValue(first.output, 'write-1', `scratch ${MESSAGE}`, problems);
    expectValue(first.output, 'after-kill', MESSAGE, problems);
    expectValue(first.output, 'kept-1', 'first-run', problems);
    if (problems.length > 0) throw new Error(`boot 1:\n  ${problems.join('\n  ')}`);
    log(
      `boot 1: imported ${image.layers.length} layers in ${reportedValue(first.output, 'import-ms')} ms, ctr run ${reportedValue(first.output, 'run-1-ms')} ms; after a SIGKILL and restart containerd reached the snapshotter in ${reportedValue(first.output, 'proxy-back-ms')} ms and ran again; power cut with a kept container`,
    );

    const second = await bootVm({ command: `bash test/containerd/guest-ctr.sh second ${IMAGE}`, disk, timeoutMs: 15 * 60_000 });
    problems = [];
    if (second.exitCode !== 0) problems.push(`boot 2 ended with status ${second.exitCode}:\n${failures(second.output).join('\n')}`);
    expectValue(second.output, 'images', IMAGE, problems);
    expectValue(second.output, 'after-boot', MESSAGE, problems);
    expectValue(second.output, 'kept-2', 'kept-write', problems);
    expectValue(second.output, 'snapshots-left', '0', problems);
    expectValue(second.output, 'snapshotter-exit', '0', problems);
    let doctor = null;
    try {
      doctor = JSON.parse(reportedValue(second.output, 'doctor') ?? '');
    } catch {
      problems.push(`doctor printed no JSON: ${reportedValue(second.output, 'doctor')}`);
    }
    problems.push(...thinIdProblems(doctor));
    // The garbage collector's Removes reached the snapshotter: the pool keeps only the shared base.
    if (doctor && doctor.thinIds?.length !== 1)
      problems.push(`the pool holds thin ids ${JSON.stringify(doctor.thinIds)} after every snapshot was removed; expected the base alone`);
    if (problems.length > 0) throw new Error(`boot 2 (after the power cut):\n  ${problems.join('\n  ')}`);
    log(
      `boot 2: after the power cut, ctr run ${reportedValue(second.output, 'after-boot-ms')} ms, the kept container found its write, everything removed through the proxy, doctor clean`,
    );
  } finally {
    fs.rmSync(disk, { force: true });
  }
}
