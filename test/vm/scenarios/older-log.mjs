// A log behind its pool on one real kernel: apply, keep a copy of events.ndjson, apply again with a
// newer device and write in it, put the older log back, then `up` and `gc --yes`. Nothing of the
// newer device may be deleted: its thin id stays in the pool, its file reads back, doctor reports
// the log behind its pool (exit 1) and gc refuses.

import { bootExpecting, matchLine, THINLAYER, writeInGuest } from '../scenario-harness.mjs';
import { guestDiskMount } from '../vm.mjs';

export const name = 'older-log';

const STATE = `${guestDiskMount}/state`;

const manifest = (devices) => `version: 1
pool:
  name: older
  data: { file: data.img, size: 1G }
  metadata: { file: metadata.img, size: 64M }
  blockSize: 64K
  baseSize: 128M
layers:
  os: {}
devices:
${devices.map((d) => `  ${d}: { layer: os, state: mounted, mountpoint: /run/thinlayer/${d} }`).join('\n')}
`;

const tl = `${THINLAYER} --backend kernel --state-dir ${STATE}`;

const command = `set -e
${writeInGuest(`${guestDiskMount}/one.yaml`, manifest(['web']))}
${writeInGuest(`${guestDiskMount}/two.yaml`, manifest(['web', 'newer']))}
${tl} apply -f ${guestDiskMount}/one.yaml --yes
cp ${STATE}/events.ndjson /tmp/older.ndjson
${tl} apply -f ${guestDiskMount}/two.yaml --yes
echo "made after the backup" > /run/thinlayer/newer/data.txt
sync
echo "TL-OLD: newer thin id $(${tl} status --json | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>{const v=JSON.parse(s);console.log(v.devices.find((d)=>d.name==="newer").thinId)})')"
cp /tmp/older.ndjson ${STATE}/events.ndjson
set +e
${tl} up > /tmp/up.out 2>&1
echo "TL-OLD: up exit $?"
sed 's/^/TL-OLD-UP: /' /tmp/up.out
${tl} gc --yes --json > /tmp/gc.json 2>&1
echo "TL-OLD: gc exit $? $(tr -d '\\n' < /tmp/gc.json)"
${tl} doctor --json > /tmp/doc.json
echo "TL-OLD: doctor exit $? $(tr -d '\\n' < /tmp/doc.json)"
echo "TL-OLD: newer reads: $(cat /run/thinlayer/newer/data.txt)"
set -e
`;

export async function run({ bootVm, log }) {
  log('one boot: apply, back up the log, apply a newer device, put the old log back, up, gc --yes, doctor');
  const boot = await bootExpecting(bootVm, { command, freshDisk: true, timeoutMs: 15 * 60_000 }, { ends: 'exit 0', what: 'the boot' });
  const out = boot.output;
  const newerId = Number(matchLine(out, /^TL-OLD: newer thin id (\d+)$/, "the newer device's thin id")[1]);
  const up = matchLine(out, /^TL-OLD: up exit (\d+)$/, "up's exit status")[1];
  if (up !== '0') throw new Error(`up exited ${up}`);
  if (!/TL-OLD-UP: .*this log recorded/.test(out)) throw new Error('up did not say that the log is behind its pool');
  const gc = matchLine(out, /^TL-OLD: gc exit (\d+) (.*)$/, "gc's result");
  if (gc[1] !== '1') throw new Error(`gc --yes exited ${gc[1]}, not 1: ${gc[2]}`);
  if (JSON.parse(gc[2]).done) throw new Error(`gc --yes deleted something: ${gc[2]}`);
  const doc = matchLine(out, /^TL-OLD: doctor exit (\d+) (.*)$/, "doctor's report");
  const report = JSON.parse(doc[2]);
  if (doc[1] !== '1' || !report.findings.some((f) => f.code === 'pool.log-behind'))
    throw new Error(`doctor does not report the log behind its pool: ${doc[2]}`);
  if (!report.thinIds?.includes(newerId)) throw new Error(`thin id ${newerId} of the newer device is gone from the pool: ${JSON.stringify(report.thinIds)}`);
  matchLine(out, /^TL-OLD: newer reads: made after the backup$/, "the newer device's file");
  log(`up exit 0 with a warning, gc --yes refused, doctor reports pool.log-behind, thin id ${newerId} and its file intact`);
}
