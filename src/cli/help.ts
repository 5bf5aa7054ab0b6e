// Help texts. commander prints each command's usage and options from the grammar (program.ts);
// these say what a command does, what it needs and what it prints, and teach by example.

export const COMMAND_SUMMARY: Record<string, string> = {
  program: 'declarative device-mapper thin provisioning for layered filesystem images',
  apply: 'record FILE as the desired state and converge to it',
  plan: 'show what apply (or, without -f, up) would do; changes nothing',
  status: 'the pool, layers and devices: observed state against desired',
  events: 'the event log (--json: NDJSON; --follow: keep printing)',
  diff: 'what changed in a device against its layer (A, C, D), and -o: as a layer tar',
  export: 'a layer or device and its chain as an OCI image layout (ctr images import, oci: sources)',
  commit: "make a device's current state a layer, in O(1): a snapshot, and its diff stored by digest",
  up: 'converge to the recorded desired state (after a reboot or a crash)',
  down: 'unmount and deactivate everything, keeping all data',
  destroy: 'delete every device, the pool and its backing files',
  doctor: "check the pool's health and the log against the kernel; says how to repair",
  gc: 'delete thin ids this log made and no longer records, and layers no longer listed',
  watch: 'keep converged: follow FILE, repair drift, grow the pool',
  snapshotter: "serve containerd's snapshotter API on the pool FILE names (docs/containerd.md)",
  pool: 'grow a file-backed pool (sparse files, loop devices, pool table)',
  grow: 'grow a file-backed pool (sparse files, loop devices, pool table)',
  sim: "(development) drop the simulated kernel's volatile state",
  reboot: "(development) drop the simulated kernel's volatile state",
};

/** What `help` itself says after its options. */
export const HELP_HELP = `Prints what a command does, its options (the global ones included), its exit codes and an example:
the same as COMMAND --help.

Example:
  thinlayer help pool grow`;

export const HELP_AFTER = `
Exit codes: 0 done (converged), 1 failed (a kernel or state error, a blocked plan, a prompt answered
no: "cancelled"), 2 bad input (the message names the file and field, or the directory that is not a
state directory); 130 and 143 when SIGINT or SIGTERM stopped a run after its current step (run the
same command again to finish). With --detailed-exitcode (plan, status) 2 means only "changes" and
every error is 1. Each command's help lists its own. With --json a failure is also one JSON object
on stdout: {"error": {"code", "message", "path"}, "outcome", "runId"}.

Examples:
  thinlayer apply -f examples/web.yaml --yes
  thinlayer status
  thinlayer plan -f examples/web.yaml --detailed-exitcode   # 0 nothing to do, 2 changes
  thinlayer sim reboot && thinlayer up
  thinlayer events --json | head -1

See docs/ (manifest.md, recovery.md, operations.md) for the rest.`;

export const COMMAND_HELP: Record<string, string> = {
  apply: `Validates FILE (a manifest, see docs/manifest.md; - reads it from standard input), records it as
the desired state, and takes every step to reach it: the pool, the base filesystem, layer
snapshots, device snapshots, activation and mounts. Each kernel step is logged before and after it
runs, so a crash at any point is recovered by the next apply or up. Applying the same manifest
twice changes nothing.

Steps that delete data (devices dropped from the manifest) are shown first and need
confirmation: a prompt on a terminal, or --yes. Without either, nothing is changed and the exit
code is 2; a prompt answered no says "cancelled" and exits 1.

--json prints {"outcome","runId","steps","passes","plan"} when done.

Example:
  thinlayer apply -f examples/web.yaml --yes`,
  plan: `Shows the steps apply -f FILE would take (without -f: the steps up would take), each marked
+ create, ~ update or - destroy. Changes nothing and takes no lock.
--json prints {"steps": [...], "impact": "...", "blockers": [...]}; steps is empty when
everything is in its desired state. --detailed-exitcode exits 2 when there are steps to take
(scripts: "is anything to do?"), 0 when there are none, 1 on any error.

Example:
  thinlayer plan -f examples/web.yaml --detailed-exitcode`,
  status: `The pool (mode, data and metadata use, transaction id), each layer (parent, thin id, devices
using it) and each device (observed state, size, the bytes it maps in the pool with their share of
its size like lvs' Data%, mountpoint, and its stable /dev/mapper path). NAME... shows only those
devices, layers or the pool. -o wide adds the desired state, thin id, where the simulated kernel
keeps a mount, and the kernel's /dev/dm-N; -o custom-columns=name,state,dev (or --columns) prints
only the devices, with the columns name, layer, state, desired, size, used, thin-id, mountpoint,
seen-at, dev and kernel-dev. -o json is --json.
--json prints {"pool", "layers", "devices", ...}; each device has name, state, desired, mountpoint,
sizeBytes, mappedBytes and mappedPercent (null while the device is not active).
--detailed-exitcode exits 2 when anything differs from the desired state (drift, interrupted
steps, things to delete), 0 when all is as desired.

Examples:
  thinlayer status web1 web2 -o wide
  thinlayer status --columns name,state,dev`,
  events: `The event log: every desired state recorded and every step's intent and outcome.
--json prints one JSON event a line (NDJSON); --follow keeps printing new events until interrupted;
--since SEQ starts after sequence number SEQ, --since TIME (ISO 8601, e.g. 2026-12-01T10:00:00Z)
at that time.

Example:
  thinlayer events --since 2026-12-01T10:00:00Z`,
  diff: `Lists what changed in DEVICE against the layer it was made from, one path a line, as docker
diff does: A added, C changed (content, type, mode, owner, times, link target or extended
attributes), D deleted. -o FILE also writes the changes as an OCI layer tar (whiteouts for what was
deleted, opaque directories, hard links, owners, modes, times, xattrs and file capabilities kept),
the same bytes for the same state, and prints its digest (its diff id). Both trees are only read:
a device that is mounted is read where it is; the layer, and a device that is not, are mounted
read-only at a private mountpoint in the state dir for the reading and put back after (logged steps).
--json prints {"device","layer","changes":[{"kind","path"}],"tar":{"path","diffId","bytes"}}.

Examples:
  thinlayer diff web1
  thinlayer diff web1 -o web1-changes.tar`,
  commit: `Makes DEVICE's current state a layer named LAYER, in O(1) of the device's size: the device is
snapshotted (suspended for that instant, which flushes and freezes its filesystem), the snapshot's
difference from the device's layer is stored as an OCI layer tar under its digest in the state
dir's blobs/, and the snapshot becomes the layer of that content. Nothing is copied or extracted.
It prints the manifest lines that declare the layer: an apply of a manifest with them finds the
layer made (no extraction) and makes its devices snapshots of it. Until a manifest declares it, the
layer is one no manifest lists: the next apply deletes it (its tar stays in blobs/). -o FILE also
writes the tar there. Killed in the middle, the next commit (or apply) deletes the unfinished
snapshot. --json prints {"device","layer","parent","chainId","diffId","blob","bytes","changes",
"thinId","created","manifest"}.

Examples:
  thinlayer commit web1 web-v2
  thinlayer commit web1 web-v2 -o web-v2.tar --json`,
  export: `Writes LAYER's chain of layers, or DEVICE's (its layer's chain and its own changes on top, read as
diff reads them), as an OCI image layout in DIR: oci-layout, index.json naming the image (the
org.opencontainers.image.ref.name annotation is the tag; io.containerd.image.name the whole
name), and blobs for each layer (gzip-compressed unless --compress none), the config (its
rootfs.diff_ids) and the manifest. DIR must be empty, absent, or a layout already (its other
images are kept). Each layer is read from the source it was applied from and checked against its
diff id: a source changed since is refused. Tarred, DIR is what ctr images import takes; as a
source, oci:DIR:TAG gives the same chain ids, so an apply finds the layers already made.
--json prints {"name","kind","dir","tag","manifestDigest","configDigest","layers":[...]}.

Examples:
  thinlayer export web --oci ./web-image --tag example.com/web:v2
  tar -C ./web-image -cf web.tar . && ctr images import web.tar`,
  up: `Brings everything back to the recorded desired state, with no manifest: after a reboot, a
crash, or thinlayer down. Interrupted steps are completed first. With nothing recorded yet it
says so and exits 0 (--json: {"outcome":"nothing-recorded"}), like gc and pool grow.

Example:
  thinlayer sim reboot && thinlayer up`,
  down: `Unmounts and deactivates every device and the pool, and detaches the loop devices. All data
stays; thinlayer up brings it back. Refused (exit 1) while a snapshotter or watch runs on the state
dir, naming it and how to stop it; --force asks it to stop and waits until it has.

Example:
  thinlayer down --force`,
  destroy: `Deletes every device and layer, the base, the pool and its backing files. The prompt (on a
terminal) counts everything it deletes; --yes confirms without asking. Refused (exit 1) while a
snapshotter or watch runs on the state dir, naming it and how to stop it; --force asks it to stop
and waits until it has.

Example:
  thinlayer destroy --yes`,
  doctor: `Checks the pool's health (mode, needs_check, data and metadata use, warning at 80/90/95%) and
compares the log with the kernel: thin ids in the pool the log does not own (orphans), thin ids
the log owns that the pool lacks, devices not active or mounted as the log says, thin tables that
name another thin id. Each finding has a code, a severity and the command that repairs it;
docs/recovery.md explains them all. Changes nothing and takes no lock.
--json prints {"pool", "orphans", "missing", "thinIds", "findings": [{code, severity, subject, message, repair}], ...}.

Example:
  thinlayer doctor --json`,
  gc: `Deletes orphan thin ids that this log created (in the pool, no longer in the log), layers the
manifest no longer lists, records of thin ids the pool lost (so that up builds them again), and
devices carrying this state directory's identity that the log never recorded. Without --yes, shows
what it would delete and changes nothing. Every deletion is logged before and after.
A thin id this log did not create is deleted only when named: --thin-id N asks first, saying how
much data it maps (--yes skips the question). While the pool's transaction id is ahead of the log
(an older log put back), gc deletes nothing; --keep-foreign records what the pool holds beyond the
log as foreign, which ends that.
--json prints {"dryRun", "blockers", "steps", "skipped", ...}; with --yes also "done".

Example:
  thinlayer gc --yes`,
  watch: `Runs a reconcile at start, when FILE changes, every --interval (default 30s), on SIGHUP, on pool
events and on requests (files dropped in STATE_DIR/requests/). Invalid edits are reported and the
last valid manifest kept; edits that delete devices wait for \`apply -f FILE --yes\`. File-backed
pools grow by 20% at 80% use. The lock is held only during runs; SIGINT/SIGTERM finish the current
step and stop. Terminal: a live view; --json: NDJSON events; --metrics-port: Prometheus metrics on
127.0.0.1. See docs/operations.md.

Example:
  thinlayer watch -f /etc/thinlayer/host.yaml --interval 1m --metrics-port 9464`,
  snapshotter: `Serves containerd.services.snapshots.v1.Snapshots on the unix socket PATH (mode 0600), for
containerd's proxy plugin ([proxy_plugins.thinlayer] type = "snapshot", address = "PATH"). The
pool is the one FILE's \`pool:\` names (FILE may hold only that); it and its base are made when
missing. Snapshots are thin snapshots in that pool, logged like every other change: a crash at any
point is completed or rolled back at the next start, and active snapshots are activated again.
The socket exists only while the service is ready. The state dir's lock is held only while
requests change something, so apply, status and doctor run beside it. SIGTERM/SIGINT: calls under
way finish, the socket is removed, exit 0. See docs/containerd.md.

Example:
  thinlayer snapshotter -f /etc/thinlayer/pool.yaml --socket /run/thinlayer/snapshotter.sock`,
  pool: `Grows a file-backed pool: extends the sparse data (and metadata) file, makes the loop device take
the new size, and reloads the live thin-pool table. Sizes only grow. For a pool on block devices,
grow the devices yourself; the next activation takes their size. Logged as a pool.grow step, and
finished by the next command if a crash interrupts it.

Example:
  thinlayer pool grow --data 200G --metadata 2G`,
  sim: `Development aid for the simulated kernel: drops its volatile state (device-mapper devices, loop
devices, mounts) as a reboot would, keeping pool metadata and device contents. It refuses
--backend kernel: only a real reboot reboots the real kernel.

Example:
  thinlayer sim reboot`,
};

const SIGNALLED: ExitCode[] = [
  [130, 'SIGINT stopped the run after its current step (run the same command again to finish)'],
  [143, 'SIGTERM stopped the run after its current step (run the same command again to finish)'],
];
const BAD_INPUT = 'bad input: a flag, or a state dir that is not one';
const FAILED = 'failed: a kernel or state error (the message says which)';

/** An exit code and what it means for one command. */
export type ExitCode = [code: number, meaning: string];

/**
 * Each command's exit codes, listed in its help. test/cli/exit-codes.sim.test.ts provokes every
 * one of them: a code added here without a way to reach it fails that test.
 */
export const EXIT_CODES: Record<string, ExitCode[]> = {
  apply: [
    [0, 'converged'],
    [1, `${FAILED}, a blocked plan, or "cancelled": the prompt was answered no`],
    [2, 'bad input: the manifest (the message names the file and field), a flag; or steps that delete data, with no --yes and no terminal to ask'],
    ...SIGNALLED,
  ],
  plan: [
    [0, 'the plan was shown; with --detailed-exitcode: there is nothing to do'],
    [1, `${FAILED}, or a blocked plan; with --detailed-exitcode: any error, bad input included`],
    [2, 'with --detailed-exitcode: there are steps to take; without it: bad input (the manifest, a flag)'],
  ],
  status: [
    [0, 'the status was shown; with --detailed-exitcode: everything is as desired'],
    [1, `${FAILED}; with --detailed-exitcode: any error, bad input included`],
    [2, 'with --detailed-exitcode: something differs from the desired state; without it: bad input (a flag, a NAME not recorded)'],
  ],
  events: [
    [0, 'the events were printed (with --follow: until interrupted)'],
    [1, 'failed: the log cannot be read'],
    [2, `${BAD_INPUT}, or a --since that is neither a number nor a time`],
  ],
  diff: [
    [0, 'the changes were listed (and written with -o)'],
    [1, FAILED],
    [2, `${BAD_INPUT}, or a DEVICE the manifest does not name`],
  ],
  commit: [
    [0, 'the layer was made (and written with -o)'],
    [1, FAILED],
    [2, `${BAD_INPUT}, a DEVICE the manifest does not name, or a LAYER name already taken`],
  ],
  export: [
    [0, 'the image layout was written'],
    [1, `${FAILED}, or a layer's source changed since it was applied`],
    [2, `${BAD_INPUT}, a NAME the manifest does not name, or a DIR that is neither empty nor a layout`],
  ],
  up: [[0, 'converged, or nothing recorded yet'], [1, FAILED], [2, BAD_INPUT], ...SIGNALLED],
  down: [
    [0, 'everything is down, or nothing recorded yet'],
    [1, `${FAILED}, or refused while a snapshotter or watch runs (see --force)`],
    [2, BAD_INPUT],
    ...SIGNALLED,
  ],
  destroy: [
    [0, 'everything is deleted, or nothing recorded yet'],
    [1, `${FAILED}, refused while a snapshotter or watch runs (see --force), or "cancelled": the prompt was answered no`],
    [2, `${BAD_INPUT}; or no --yes and no terminal to ask`],
    ...SIGNALLED,
  ],
  doctor: [
    [0, 'healthy (warnings allowed)'],
    [1, `any finding is an error, or ${FAILED}`],
    [2, BAD_INPUT],
  ],
  gc: [
    [0, 'done, or (without --yes) shown'],
    [1, `${FAILED}, or gc cannot run (the reason is printed)`],
    [2, `${BAD_INPUT}, or --thin-id that is not a number`],
    ...SIGNALLED,
  ],
  watch: [
    [0, 'stopped by SIGINT or SIGTERM after the step under way'],
    [1, 'failed to start: another watch serves the state dir, or a kernel or state error'],
    [2, `${BAD_INPUT}, no -f FILE, -f - (standard input cannot be watched), a bad --interval, or a --metrics-port taken`],
  ],
  snapshotter: [
    [0, 'stopped by SIGINT or SIGTERM once the calls under way finished'],
    [1, FAILED],
    [2, `${BAD_INPUT}, no --socket, or no -f FILE`],
  ],
  'pool grow': [
    [0, 'grown, or nothing recorded yet'],
    [1, FAILED],
    [2, `${BAD_INPUT}, no size, or a size that is not one`],
  ],
  'sim reboot': [
    [0, 'the simulated kernel rebooted'],
    [2, `${BAD_INPUT}, or --backend kernel`],
  ],
  help: [
    [0, 'the help was printed'],
    [2, 'no such command'],
  ],
};

/** `text` in lines of at most `width` columns, the first starting with `first` and the rest with `rest`. */
export function wrapText(text: string, width: number, first: string, rest: string): string[] {
  const lines: string[] = [];
  let line = first;
  for (const word of text.split(' ')) {
    const prefix = line === first || line === rest;
    if (!prefix && line.length + 1 + word.length > width) {
      lines.push(line);
      line = rest + word;
    } else line = prefix ? line + word : `${line} ${word}`;
  }
  lines.push(line);
  return lines;
}

/** The exit codes of one command, as its help lists them (80 columns). */
export function exitCodesHelp(command: string): string {
  const codes = EXIT_CODES[command] ?? [];
  return ['Exit codes:', ...codes.flatMap(([code, meaning]) => wrapText(meaning, 80, `  ${String(code).padEnd(3)}  `, ' '.repeat(7)))].join('\n');
}
