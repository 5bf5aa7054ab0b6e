// Two state directories whose manifests give their pools the same name, on one real kernel. The
// first applies and writes a file in its mounted device; the second's apply must refuse (exit 1,
// naming the owner it found) and never show the first one's files; its gc deletes nothing; the
// first stays healthy and keeps its file.

import { bootExpecting, matchLine, THINLAYER, writeInGuest } from '../scenario-harness.mjs';
import { guestDiskMount } from '../vm.mjs';

export const name = 'two-state-dirs';

const A = `${guestDiskMount}/a`;
const B = `${guestDiskMount}/b`;

const manifest = (who) => `version: 1
pool:
  name: shared
  data: { file: data.img, size: 1G }
  metadata: { file: metadata.img, size: 64M }
  blockSize: 64K
  baseSize: 128M
layers:
  os: {}
devices:
  web: { layer: os, state: mounted, mountpoint: /run/thinlayer/${who}/web }
`;

const tl = (state) => `${THINLAYER} --backend kernel --state-dir ${state}`;

const command = `set -e
mkdir -p ${A} ${B}
${writeInGuest(`${guestDiskMount}/a.yaml`, manifest('a'))}
${writeInGuest(`${guestDiskMount}/b.yaml`, manifest('b'))}
${tl(A)} apply -f ${guestDiskMount}/a.yaml --yes
echo "a only" > /run/thinlayer/a/web/secret.txt
sync
set +e
${tl(B)} apply -f ${guestDiskMount}/b.yaml --yes > /tmp/b.out 2>&1
echo "TL-TWO: b apply exit $?"
sed 's/^/TL-TWO-B: /' /tmp/b.out
if [ -e /run/thinlayer/b/web/secret.txt ]; then echo "TL-TWO: LEAK: b shows a's file"; fi
echo "TL-TWO: b mounts: $(grep -c /run/thinlayer/b /proc/mounts)"
${tl(B)} gc --yes --json > /tmp/b-gc.json 2>&1
echo "TL-TWO: b gc exit $? $(tr -d '\\n' < /tmp/b-gc.json)"
${tl(A)} doctor --json > /tmp/a-doc.json
echo "TL-TWO: a doctor exit $? $(tr -d '\\n' < /tmp/a-doc.json)"
echo "TL-TWO: a reads: $(cat /run/thinlayer/a/web/secret.txt)"
set -e
${tl(A)} down
`;

export async function run({ bootVm, log }) {
  log('one boot: a applies and writes; b (same pool name) applies, gcs; a doctors and reads back');
  const boot = await bootExpecting(bootVm, { command, freshDisk: true, timeoutMs: 15 * 60_000 }, { ends: 'exit 0', what: 'the boot' });
  const out = boot.output;
  const bExit = Number(matchLine(out, /^TL-TWO: b apply exit (\d+)$/, "b's apply exit status")[1]);
  if (bExit !== 1) throw new Error(`b's apply exited ${bExit}, not 1`);
  if (!/TL-TWO-B: .*belongs to the thinlayer state directory with identity [0-9a-f]{32}/.test(out))
    throw new Error("b's refusal does not name the owner (an identity)");
  if (!out.includes(`TL-TWO-B: `) || !out.includes(`${A}/data.img`)) throw new Error("b's refusal does not name a's backing file");
  if (out.includes('TL-TWO: LEAK')) throw new Error("b's mountpoint shows a's file");
  if (matchLine(out, /^TL-TWO: b mounts: (\d+)$/, "b's mounts")[1] !== '0') throw new Error('b mounted something');
  const gc = matchLine(out, /^TL-TWO: b gc exit (\d+) (.*)$/, "b's gc");
  if (JSON.parse(gc[2]).steps?.length) throw new Error(`b's gc planned steps: ${gc[2]}`);
  const doc = matchLine(out, /^TL-TWO: a doctor exit (\d+) (.*)$/, "a's doctor");
  if (doc[1] !== '0') throw new Error(`a's doctor exited ${doc[1]}: ${doc[2]}`);
  matchLine(out, /^TL-TWO: a reads: a only$/, "a's file, intact");
  log(`b refused with exit 1 naming a; b saw nothing of a; a healthy (doctor exit 0) with its file intact`);
}
