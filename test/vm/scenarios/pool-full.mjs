// A pool that fills, as a node meets it (issue 20, item 2): containerd, ctr and runc on thinlayer's
// snapshotter with a 96 MiB file-backed pool, pool.minFree 10% and noSpaceTimeout 5s, in one boot
// (test/containerd/guest-pool-full.sh). A container writes until the pool is full: its writes end
// with ENOSPC rather than hang; while the pool is full, a Prepare and a `ctr run` are refused by
// pool.minFree (ResourceExhausted, naming data and the percentages); once the filling container is
// removed the pool is writable again, a new container runs, another container's file is intact.
// Then `thinlayer watch` runs beside the snapshotter on the same state dir: a container takes the
// pool past 80% and watch grows it while containers run. After everything is removed doctor finds
// no thin id leaked or lost and no error.

import fs from 'node:fs';
import path from 'node:path';
import { writeOciArchive } from '../../containerd/oci-image.mjs';
import { reportedValue, thinIdProblems } from '../scenario-harness.mjs';
import { workDir } from '../vm.mjs';

export const name = 'pool-full';

const IMAGE = 'docker.io/library/tlfull:1';
const MESSAGE = 'hello from a full pool';
/** pool.minFree's refusal, as src/plan/pressure.ts words it, through containerd's error. */
const FLOOR_REFUSAL = /the pool has data \d+(\.\d)?% free \(\d+ of \d+ blocks\).*below pool\.minFree 10%/;

function failures(output) {
  return output.split('\n').filter((l) => l.startsWith('TL-CTD-FAIL') || l.startsWith('TL-CTD-SNAPLOG') || l.startsWith('TL-CTD-CTDLOG'));
}

export async function run({ bootVm, log }) {
  const image = writeOciArchive({
    out: path.join(workDir, 'containerd', 'tlfull.tar'),
    name: IMAGE,
    layers: 1,
    message: MESSAGE,
    scratch: path.join(workDir, 'containerd', 'tlfull'),
  });
  const disk = path.join(workDir, `pool-full-${process.pid}.img`);
  try {
    const boot = await bootVm({ command: `bash test/containerd/guest-pool-full.sh ${image.out} ${IMAGE}`, freshDisk: true, disk, timeoutMs: 15 * 60_000 });
    const value = (key) => reportedValue(boot.output, key);
    const problems = [];
    const expect = (key, ok, wanted) => {
      if (!ok(value(key))) problems.push(`${key}: expected ${wanted}, got ${value(key) === null ? 'no line' : `"${value(key)}"`}`);
    };
    if (boot.exitCode !== 0) problems.push(`the boot ended with status ${boot.exitCode}:\n${failures(boot.output).join('\n')}`);
    expect('no-space-timeout', (v) => v === '5', "the manifest's noSpaceTimeout, 5 (seconds)");
    expect('keeper-1', (v) => v === 'first-run', '"first-run"');
    // timeout(1) answers 124 on a hang; the container's shell ends normally after dd's error.
    expect('fill-status', (v) => v === '0', 'ctr run to end (0), not be stopped by the hang guard (124)');
    expect('fill-dd-exit', (v) => v !== null && v !== '' && v !== '0', "dd's non-zero exit");
    expect('fill-error', (v) => v === 'No space left on device', 'ENOSPC ("No space left on device")');
    expect('probe-status', (v) => v !== null && v !== '0', 'ctr snapshots prepare to fail');
    expect('probe', (v) => v !== null && FLOOR_REFUSAL.test(v), `pool.minFree's refusal (${FLOOR_REFUSAL})`);
    expect('refused-status', (v) => v !== null && v !== '0', 'ctr run to fail');
    expect('refused', (v) => v !== null && FLOOR_REFUSAL.test(v), `pool.minFree's refusal (${FLOOR_REFUSAL})`);
    expect('after-remove', (v) => v !== null && / mode rw$/.test(v), 'the pool writable again (mode rw)');
    expect('after', (v) => v === `after-write ${MESSAGE}`, `"after-write ${MESSAGE}"`);
    expect('keeper-2', (v) => v === 'kept-write', '"kept-write" (the other container\'s file intact)');
    expect('grower', (v) => v === 'dd-exit=0', 'dd-exit=0 (the pool past 80%, below the floor of 90%)');
    expect('after-grow', (v) => v !== null && Number(/^\d+\/(\d+)/.exec(v)?.[1]) > 1536, 'more than 1536 data blocks (watch grew the pool)');
    expect('beside-watch', (v) => v === 'beside', '"beside"');
    expect('watch-exit', (v) => v === '0', '0');
    expect('snapshots-left', (v) => v === '0', '0');
    expect('snapshotter-exit', (v) => v === '0', '0');
    let doctor = null;
    try {
      doctor = JSON.parse(value('doctor') ?? '');
    } catch {
      problems.push(`doctor printed no JSON: ${value('doctor')}`);
    }
    problems.push(...thinIdProblems(doctor));
    if (doctor && doctor.exitCode !== 0)
      problems.push(`doctor found errors: ${JSON.stringify(doctor.findings.filter((f) => f.severity === 'error').map((f) => f.code))}`);
    if (doctor && doctor.thinIds?.length !== 1)
      problems.push(`the pool holds thin ids ${JSON.stringify(doctor.thinIds)} after everything was removed; expected the base alone`);
    if (problems.length > 0) throw new Error(`pool-full:\n  ${problems.join('\n  ')}\n  output of the fill: ${value('fill-output')}`);
    log(
      `pool ${value('before-fill')} before the fill; the container's dd ended with ENOSPC after ${value('fill-ms')} ms (${value('after-fill')}); ` +
        `Prepare and ctr run refused by pool.minFree; after the filler's removal ${value('after-remove')}; keeper's file intact; ` +
        `watch beside the snapshotter grew the pool (${value('after-grow')}); doctor clean`,
    );
  } finally {
    fs.rmSync(disk, { force: true });
  }
}
