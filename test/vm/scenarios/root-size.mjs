// A root size per container through containerd, on the real kernel, with ext4 and with xfs (one
// boot, test/containerd/guest-root-size.sh): `ctr run --snapshotter-label
// containerd.io/snapshot/thinlayer.size=640M` sees a root of 640M with `df /` inside the container
// (the device made at that length, its filesystem grown online by resize2fs or xfs_growfs), and
// still reads the image's files; a container without the label keeps the base's size; a label that
// is not a size fails `ctr run` with the snapshotter's message naming the label. Afterwards every
// snapshot is removed through the proxy and doctor finds no thin id leaked or lost.

import fs from 'node:fs';
import path from 'node:path';
import { writeOciArchive } from '../../containerd/oci-image.mjs';
import { reportedValue, thinIdProblems } from '../scenario-harness.mjs';
import { workDir } from '../vm.mjs';

export const name = 'root-size';

const IMAGE = 'docker.io/library/tlsize:1';
const MESSAGE = 'a root of its own size';
const KiB = 1024;
const MiB = 1024 * KiB;
const SIZED = 640 * MiB;
const BASE = { ext4: 256 * MiB, xfs: 320 * MiB };

function failures(output) {
  return output.split('\n').filter((l) => l.startsWith('TL-CTD-FAIL') || l.startsWith('TL-CTD-SNAPLOG') || l.startsWith('TL-CTD-CTDLOG'));
}

/**
 * What `df` reports is the filesystem's size less what it keeps for itself (ext4's inode tables and
 * journal, xfs's log): at most the device, and at least `least` of it (measured: ext4 92% of 640M
 * and 90% of 256M, xfs 90% of 640M and 80% of 320M). A grown root must also show more than the
 * base's whole device, which no root of the base's size can.
 */
function sizeProblems(output, key, deviceBytes, base, least) {
  const kib = Number(reportedValue(output, key));
  if (!Number.isFinite(kib) || kib <= 0) return [`${key}: no size from df (${reportedValue(output, key)})`];
  const bytes = kib * KiB;
  if (bytes > deviceBytes || bytes < deviceBytes * least || (deviceBytes > base && bytes <= base))
    return [`${key}: df / says ${kib} KiB, expected a filesystem of ${deviceBytes / MiB} MiB`];
  return [];
}

export async function run({ bootVm, log }) {
  const image = writeOciArchive({
    out: path.join(workDir, 'containerd', 'tlsize.tar'),
    name: IMAGE,
    layers: 2,
    message: MESSAGE,
    scratch: path.join(workDir, 'containerd', 'tlsize'),
  });
  const disk = path.join(workDir, `root-size-${process.pid}.img`);
  try {
    const boot = await bootVm({ command: `bash test/containerd/guest-root-size.sh ${image.out} ${IMAGE}`, freshDisk: true, disk, timeoutMs: 15 * 60_000 });
    const out = boot.output;
    const problems = [];
    if (boot.exitCode !== 0 || reportedValue(out, 'done') !== '1') problems.push(`the boot ended with status ${boot.exitCode}:\n${failures(out).join('\n')}`);
    for (const fsType of ['ext4', 'xfs']) {
      problems.push(...sizeProblems(out, `${fsType}-sized-kib`, SIZED, BASE[fsType], 0.85));
      problems.push(...sizeProblems(out, `${fsType}-plain-kib`, BASE[fsType], BASE[fsType], 0.7));
      for (const run of ['sized', 'plain']) {
        const got = reportedValue(out, `${fsType}-${run}-message`);
        if (got !== MESSAGE) problems.push(`${fsType}-${run}: the image's file reads ${JSON.stringify(got)}, not ${JSON.stringify(MESSAGE)}`);
      }
      if (reportedValue(out, `${fsType}-snapshots-left`) !== '0')
        problems.push(`${fsType}: ${reportedValue(out, `${fsType}-snapshots-left`)} snapshots left after the image's removal`);
      if (reportedValue(out, `${fsType}-snapshotter-exit`) !== '0')
        problems.push(`${fsType}: the snapshotter ended with ${reportedValue(out, `${fsType}-snapshotter-exit`)} after SIGTERM`);
      let doctor = null;
      try {
        doctor = JSON.parse(reportedValue(out, `${fsType}-doctor`) ?? '');
      } catch {
        problems.push(`${fsType}: doctor printed no JSON: ${reportedValue(out, `${fsType}-doctor`)}`);
      }
      problems.push(...thinIdProblems(doctor).map((p) => `${fsType}: ${p}`));
      if (doctor && doctor.thinIds?.length !== 1)
        problems.push(`${fsType}: the pool holds thin ids ${JSON.stringify(doctor.thinIds)}; expected the base alone`);
    }
    const bad = reportedValue(out, 'bad-label') ?? '';
    if (!bad.includes('containerd.io/snapshot/thinlayer.size="lots"') || !bad.includes('not a size'))
      problems.push(`a label that is not a size: ctr run said ${JSON.stringify(bad)}, not the snapshotter's InvalidArgument naming the label`);
    if (problems.length > 0) throw new Error(`root-size:\n  ${problems.join('\n  ')}`);
    log(
      `df / in the container: ext4 ${reportedValue(out, 'ext4-sized-kib')} KiB sized (640M) against ${reportedValue(out, 'ext4-plain-kib')} KiB plain, ` +
        `xfs ${reportedValue(out, 'xfs-sized-kib')} KiB against ${reportedValue(out, 'xfs-plain-kib')} KiB; ctr run sized ${reportedValue(out, 'ext4-sized-ms')} ms (ext4), ` +
        `${reportedValue(out, 'xfs-sized-ms')} ms (xfs), plain ${reportedValue(out, 'ext4-plain-ms')} ms, ${reportedValue(out, 'xfs-plain-ms')} ms`,
    );
  } finally {
    fs.rmSync(disk, { force: true });
  }
}
