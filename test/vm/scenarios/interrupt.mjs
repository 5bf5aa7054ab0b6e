// Interrupt scenario: SIGINT during `thinlayer apply` on the real kernel. The apply of a manifest
// with a dozen mounted devices gets SIGINT once its fifth step has started; it must let the step
// under way finish, print `Interrupted after K of N steps; run the same command again to finish`
// (K < N) and exit 130, with no internal error. The same apply run again converges, doctor --json
// then has no warning or error, and destroy leaves nothing behind.

import { bootExpecting, matchLine, requireCli, THINLAYER, writeInGuest } from '../scenario-harness.mjs';
import { guestDiskMount } from '../vm.mjs';

export const name = 'interrupt';

const STATE = `${guestDiskMount}/interrupt-state`;
const MANIFEST = `${guestDiskMount}/interrupt.yaml`;

const devices = Array.from({ length: 12 }, (_, i) => `  d${i + 1}: { layer: app, state: mounted, mountpoint: /run/thinlayer/d${i + 1} }`).join('\n');
const manifest = `version: 1
pool:
  name: interrupt
  data: { file: data.img, size: 2G }
  metadata: { file: metadata.img, size: 64M }
  baseSize: 128M
  filesystem: ext4
layers:
  os: {}
  app: { parent: os }
devices:
${devices}
`;

const thinlayer = THINLAYER;
const common = `--backend kernel --state-dir ${STATE}`;

const boot = `set -e
rm -rf ${STATE}
${writeInGuest(MANIFEST, manifest)}
${thinlayer} apply -f ${MANIFEST} --yes ${common} > /tmp/apply.out 2> /tmp/apply.err &
pid=$!
i=0
while ! grep -q '^\\[5/' /tmp/apply.err 2>/dev/null; do
  sleep 0.1; i=$((i+1))
  if [ $i -gt 6000 ]; then echo "TL-INT: the apply never reached its fifth step"; cat /tmp/apply.err; exit 1; fi
done
kill -INT $pid
set +e; wait $pid; code=$?; set -e
cat /tmp/apply.err
echo "TL-INT: exit $code"
echo "TL-INT: said $(cat /tmp/apply.out)"
if grep -q 'internal error' /tmp/apply.err; then echo "TL-INT: internal error"; fi
${thinlayer} apply -f ${MANIFEST} --yes -q ${common}
echo "TL-INT: second apply converged"
${thinlayer} doctor --json ${common} > /tmp/doctor.json || true
echo "TL-INT-DOCTOR $(tr -d '\\n' < /tmp/doctor.json)"
${thinlayer} destroy --yes -q ${common}
echo "TL-INT: destroyed"
`;

export async function run({ bootVm, log }) {
  requireCli('apply, doctor and destroy');
  log('apply, SIGINT at its fifth step, apply again, doctor, destroy');
  const result = await bootExpecting(bootVm, { command: boot, freshDisk: true, timeoutMs: 15 * 60_000 }, { ends: 'exit 0', what: 'the boot' });
  const code = Number(matchLine(result.output, /^TL-INT: exit (\d+)$/, "the interrupted apply's exit status")[1]);
  if (code !== 130) throw new Error(`apply interrupted by SIGINT exited ${code}, not 130`);
  const said = matchLine(
    result.output,
    /^TL-INT: said Interrupted after (\d+) of (\d+) steps; run the same command again to finish$/,
    'the interruption message',
  );
  const [done, planned] = [Number(said[1]), Number(said[2])];
  if (!(done >= 4 && done < planned)) throw new Error(`the interruption message says ${done} of ${planned} steps`);
  if (result.output.includes('TL-INT: internal error')) throw new Error('the interrupted apply printed an internal error');
  matchLine(result.output, /^TL-INT: second apply converged$/, 'the second apply converging');
  const doctor = JSON.parse(matchLine(result.output, /^TL-INT-DOCTOR (\{.*\})$/, 'doctor --json')[1]);
  const bad = doctor.findings.filter((f) => f.severity !== 'info');
  if (bad.length > 0) throw new Error(`doctor after the second apply: ${JSON.stringify(bad)}`);
  matchLine(result.output, /^TL-INT: destroyed$/, 'destroy');
  log(`apply interrupted after ${done} of ${planned} steps with exit 130; the second apply converged; doctor clean`);
}
