// Reboot scenario: thinlayer's state survives a power cut. Boot 1 applies a small manifest with the
// real kernel, writes and fsyncs files in a mounted device and loses power (qemu is killed) without
// unmounting anything. Boot 2 runs `thinlayer up`, finds the files, sees every device in its
// desired state, and checks the filesystem (e2fsck -n) and the pool metadata (thin_check after
// `thinlayer down`).

import { bootExpecting, matchLine, requireCli, THINLAYER, writeInGuest } from '../scenario-harness.mjs';
import { guestDiskMount } from '../vm.mjs';

export const name = 'reboot';

const STATE = `${guestDiskMount}/state`;
const MANIFEST = `${guestDiskMount}/reboot.yaml`;
const MOUNTPOINT = '/run/thinlayer/web1'; // tmpfs in the guest: `up` must make it again
const POWER_CUT = 'TL-REBOOT: cut the power now';

const manifest = `version: 1
pool:
  name: reboot
  data: { file: data.img, size: 2G }
  metadata: { file: metadata.img, size: 64M }
  blockSize: 64K
  baseSize: 256M
  filesystem: ext4
layers:
  os: {}
  app: { parent: os }
devices:
  web1: { layer: app, state: mounted, mountpoint: ${MOUNTPOINT} }
  web2: { layer: app, state: activated }
`;

const thinlayer = THINLAYER;
const common = `--backend kernel --state-dir ${STATE}`;

// Writes two files in the mounted device and fsyncs them and their directory, then prints a digest.
const writeFiles = `node -e '
const fs = require("fs"), crypto = require("crypto");
const dir = process.argv[1];
const blob = crypto.randomBytes(4 << 20);
for (const [name, data] of [["hello.txt", "written before the power cut\\n"], ["blob.bin", blob]]) {
  const fd = fs.openSync(dir + "/" + name, "w"); fs.writeSync(fd, data); fs.fsyncSync(fd); fs.closeSync(fd);
}
const d = fs.openSync(dir, "r"); fs.fsyncSync(d); fs.closeSync(d);
console.log("TL-REBOOT: blob sha256 " + crypto.createHash("sha256").update(blob).digest("hex"));
' ${MOUNTPOINT}`;

const bootOne = `set -e
${writeInGuest(MANIFEST, manifest)}
${thinlayer} apply -f ${MANIFEST} --yes ${common}
${writeFiles}
echo "${POWER_CUT}"
sleep 600
`;

const devPathOf = (device) =>
  `node -e 'const v = JSON.parse(require("fs").readFileSync("/tmp/status.json", "utf8")); console.log(v.devices.find((d) => d.name === "${device}").devPath)'`;

const bootTwo = `set -e
${thinlayer} up ${common}
echo "TL-REBOOT: hello.txt says: $(cat ${MOUNTPOINT}/hello.txt)"
echo "TL-REBOOT: blob sha256 $(sha256sum ${MOUNTPOINT}/blob.bin | cut -d' ' -f1) after the reboot"
${thinlayer} status --json ${common} > /tmp/status.json
echo "TL-REBOOT-STATUS $(cat /tmp/status.json | tr -d '\\n')"
e2fsck -fn "$(${devPathOf('web2')})"
echo "TL-REBOOT: e2fsck clean"
${thinlayer} down ${common}
thin_check ${STATE}/metadata.img
echo "TL-REBOOT: thin_check clean"
`;

export async function run({ bootVm, log }) {
  requireCli('apply, up, status and down');

  log('boot 1: apply, write, fsync, power cut');
  const first = await bootExpecting(
    bootVm,
    { command: bootOne, freshDisk: true, killWhenOutputMatches: POWER_CUT, timeoutMs: 10 * 60_000 },
    { ends: 'power cut', what: 'boot 1' },
  );
  const digest = matchLine(first.output, /^TL-REBOOT: blob sha256 ([0-9a-f]{64})$/, 'the digest of the written file')[1];

  log('boot 2: up, read back, status, e2fsck, down, thin_check');
  const second = await bootExpecting(bootVm, { command: bootTwo, timeoutMs: 10 * 60_000 }, { ends: 'exit 0', what: 'boot 2' });
  matchLine(second.output, /^TL-REBOOT: hello.txt says: written before the power cut$/, 'the text file written before the power cut');
  const after = matchLine(second.output, /^TL-REBOOT: blob sha256 ([0-9a-f]{64}) after the reboot$/, 'the digest after the reboot')[1];
  if (after !== digest) throw new Error(`the 4 MiB file changed across the power cut: ${digest} before, ${after} after`);
  const status = JSON.parse(matchLine(second.output, /^TL-REBOOT-STATUS (\{.*\})$/, 'thinlayer status --json')[1]);
  if (status.backend !== 'kernel') throw new Error(`status reports backend ${status.backend}, not kernel`);
  if (!status.pool?.active) throw new Error('status reports the pool inactive after up');
  const off = status.devices.filter((d) => d.state !== d.desired);
  if (status.devices.length !== 2 || off.length > 0) {
    throw new Error(
      `devices not in their desired state after up: ${JSON.stringify(status.devices.map((d) => ({ name: d.name, state: d.state, desired: d.desired })))}`,
    );
  }
  matchLine(second.output, /^TL-REBOOT: e2fsck clean$/, 'a clean e2fsck');
  matchLine(second.output, /^TL-REBOOT: thin_check clean$/, 'a clean thin_check');
  log(`files intact (sha256 ${digest.slice(0, 12)}…), devices ${status.devices.map((d) => `${d.name}=${d.state}`).join(' ')}, fsck and thin_check clean`);
}
