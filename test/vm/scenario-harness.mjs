// What the multi-boot scenarios (test/vm/scenarios) share around bootVm: the CLI they drive in the
// guest, files they write on its disk, a boot that must end a given way, and the TL-… lines they
// read back from its console. A scenario keeps only its own guest script and its checks.

import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { repoRoot } from './vm.mjs';

/** The CLI as the guest runs it, from the checkout (the guest's working directory). */
export const THINLAYER = 'node bin/thinlayer.js';

/**
 * Fails early, on the host, when the CLI does not even start: every boot would fail the same way,
 * minutes later. `drives` names the commands the scenario runs through it.
 */
export function requireCli(drives) {
  try {
    execFileSync('node', [path.join(repoRoot, 'bin', 'thinlayer.js'), '--help'], { cwd: repoRoot, stdio: 'pipe', timeout: 60_000 });
  } catch (e) {
    const why = (e.stderr?.toString() || e.message).trim().split('\n').slice(0, 5).join('\n');
    throw new Error(`the thinlayer CLI does not run (node bin/thinlayer.js --help failed), and this scenario drives ${drives} through it:\n${why}`);
  }
}

/** Guest shell that writes `text` (ending in a newline) to `file`, taken literally (no expansion). */
export function writeInGuest(file, text) {
  return `cat > ${file} <<'YAML'\n${text}YAML`;
}

/**
 * Requires how a boot ended: `exit 0` (the guest script succeeded) or `power cut` (qemu killed on
 * `killWhenOutputMatches`). `what` names the boot in the error.
 */
export function requireEnding(result, { ends, what }) {
  if (ends === 'exit 0' && result.exitCode !== 0) throw new Error(`${what} failed with exit status ${result.exitCode} (its output is above)`);
  if (ends === 'power cut' && !result.killed) throw new Error(`${what} ended (exit status ${result.exitCode}) before it reached the power cut`);
  return result;
}

/** Boots once (bootVm's options) and requires how the boot ends (see requireEnding). */
export async function bootExpecting(bootVm, options, ending) {
  return requireEnding(await bootVm(options), ending);
}

/** The first line of a boot's output matching `pattern` (its match), or an error naming `what`. */
export function matchLine(output, pattern, what) {
  const match = output
    .split('\n')
    .map((l) => pattern.exec(l))
    .find(Boolean);
  if (!match) throw new Error(`boot output lacks ${what} (${pattern})`);
  return match;
}

/** The rest of the first line starting with `prefix`, trimmed, or an error. */
export function afterPrefix(output, prefix) {
  const found = output.split('\n').find((l) => l.startsWith(prefix));
  if (!found) throw new Error(`boot output lacks a line starting ${prefix}`);
  return found.slice(prefix.length).trim();
}

/** The value of the first `TL-CTD key=value` line (the containerd guest scripts' report), or null. */
export function reportedValue(output, key) {
  const found = output.split('\n').find((l) => l.startsWith(`TL-CTD ${key}=`));
  return found ? found.slice(`TL-CTD ${key}=`.length).trim() : null;
}

/** What `thinlayer doctor --json` says against the pool's own thin ids: leaked ones and lost ones. */
export function thinIdProblems(doctor) {
  const problems = [];
  if (doctor?.orphans?.length > 0) problems.push(`thin ids leaked in the pool: ${doctor.orphans.join(', ')}`);
  if (doctor?.missing?.length > 0) problems.push(`thin ids the log owns are missing from the pool: ${doctor.missing.join(', ')}`);
  return problems;
}
