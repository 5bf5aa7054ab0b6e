// Power cuts during an apply: qemu is killed (no sync, no unmount) while `thinlayer apply` creates a
// layer with content and devices on it. On the next boot, apply converges, a further plan is empty,
// no thin id is leaked or lost (doctor reads the pool's metadata with thin_ls and compares it with
// the log), the committed layer content is there, and a file fsync'd before the cut is intact.
//
// To save boots, the boot that checks cut k also sets up and cuts k+1, in a state dir of its own.

import { afterPrefix, requireEnding, thinIdProblems, THINLAYER, writeInGuest } from '../scenario-harness.mjs';
import { guestDiskMount } from '../vm.mjs';

export const name = 'power-cut';

/** The step of the second apply at whose start the power is cut (of 7 steps). */
const CUT_AT = [2, 4, 6];
const SRC = `${guestDiskMount}/cut-src`;
const thinlayer = THINLAYER;

const manifest = (k, withApp) => `pool:
  name: cut${k}
  data: { file: data.img, size: 2G }
  metadata: { file: metadata.img, size: 64M }
  baseSize: 256M
layers:
  os: {}
${withApp ? `  app: { parent: os, source: ${SRC}/app.tar }\n` : ''}devices:
  web1: { layer: os, mountpoint: /run/cut${k}/web1 }
${withApp ? `  web2: { layer: app, mountpoint: /run/cut${k}/web2 }\n  web3: { layer: app, state: activated }\n` : ''}`;

const common = (k) => `--backend kernel --state-dir ${guestDiskMount}/cut${k}/state`;

function setUpAndCut(k) {
  const dir = `${guestDiskMount}/cut${k}`;
  return `
mkdir -p ${SRC}/app/etc ${dir}
[ -f ${SRC}/app.tar ] || { echo "app layer" > ${SRC}/app/etc/app.conf; head -c 2097152 /dev/urandom > ${SRC}/app/blob; tar -C ${SRC}/app -cf ${SRC}/app.tar .; sync; }
${writeInGuest(`${dir}/m1.yaml`, manifest(k, false))}
${writeInGuest(`${dir}/m2.yaml`, manifest(k, true))}
sync # the manifests must outlive the power cut too
${thinlayer} apply -q -f ${dir}/m1.yaml --yes ${common(k)}
node -e 'const fs=require("fs"),c=require("crypto");const b=c.randomBytes(1<<20);const f=fs.openSync(process.argv[1],"w");fs.writeSync(f,b);fs.fsyncSync(f);fs.closeSync(f);const d=fs.openSync(require("path").dirname(process.argv[1]),"r");fs.fsyncSync(d);console.log("TL-CUT-${k}-SHA "+c.createHash("sha256").update(b).digest("hex"))' /run/cut${k}/web1/committed.bin
echo "TL-CUT-${k}: applying the second manifest"
${thinlayer} apply -f ${dir}/m2.yaml --yes ${common(k)} 2>&1 | sed -u 's/^/TL-CUT-${k} /'
echo "TL-CUT-${k}: the apply finished before the cut"
sleep 600
`;
}

function verify(k) {
  const dir = `${guestDiskMount}/cut${k}`;
  return `
${thinlayer} apply -q -f ${dir}/m2.yaml --yes ${common(k)}
echo "TL-VERIFY-${k}-PLAN $(${thinlayer} plan -f ${dir}/m2.yaml --json ${common(k)})"
echo "TL-VERIFY-${k}-DOCTOR $(${thinlayer} doctor --json ${common(k)} || true)"
echo "TL-VERIFY-${k}-SHA $(sha256sum /run/cut${k}/web1/committed.bin | cut -d' ' -f1)"
echo "TL-VERIFY-${k}-APP $(cat /run/cut${k}/web2/etc/app.conf)"
`;
}

function check(output, k, sha) {
  const plan = JSON.parse(afterPrefix(output, `TL-VERIFY-${k}-PLAN `));
  if (plan.steps.length !== 0) throw new Error(`cut ${k}: a plan after recovery still has steps: ${plan.steps.map((s) => s.reason).join('; ')}`);
  const doctor = JSON.parse(afterPrefix(output, `TL-VERIFY-${k}-DOCTOR `));
  const [lost] = thinIdProblems(doctor);
  if (lost) throw new Error(`cut ${k}: ${lost}`);
  const after = afterPrefix(output, `TL-VERIFY-${k}-SHA `);
  if (after !== sha) throw new Error(`cut ${k}: the file fsync'd before the cut changed: ${sha} before, ${after} after`);
  if (afterPrefix(output, `TL-VERIFY-${k}-APP `) !== 'app layer') throw new Error(`cut ${k}: the app layer's content is missing in web2`);
}

export async function run({ bootVm, log }) {
  let pending = null; // { k, sha } of the cut the next boot checks
  for (let i = 0; i <= CUT_AT.length; i++) {
    const k = i + 1;
    const cut = i < CUT_AT.length;
    const command = `set -e\n${pending ? verify(pending.k) : ''}${cut ? setUpAndCut(k) : ''}`;
    log(
      cut ? `boot ${k}: ${pending ? `check cut ${pending.k}, then ` : ''}cut the power at step ${CUT_AT[i]} of an apply` : `boot ${k}: check cut ${pending.k}`,
    );
    const result = await bootVm({
      command,
      freshDisk: i === 0,
      killWhenOutputMatches: cut ? new RegExp(`^TL-CUT-${k} \\[${CUT_AT[i]}/`) : undefined,
      timeoutMs: 12 * 60_000,
    });
    if (pending) {
      check(result.output, pending.k, pending.sha);
      log(`cut ${pending.k}: converged, plan empty, no thin id leaked or lost, fsync'd file and layer content intact`);
    }
    requireEnding(result, cut ? { ends: 'power cut', what: `boot ${k}, set to cut at step ${CUT_AT[i]},` } : { ends: 'exit 0', what: `boot ${k}` });
    if (cut) pending = { k, sha: afterPrefix(result.output, `TL-CUT-${k}-SHA `) };
  }
}
