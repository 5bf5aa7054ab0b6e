// Help texts: each command's teaches what it does, what it needs and what it prints.

export const HELP = `thinlayer: declarative device-mapper thin provisioning for layered filesystem images

Usage: thinlayer <command> [options]

Commands:
  apply -f FILE     record FILE as the desired state and converge to it
  plan [-f FILE]    show what apply (or, without -f, up) would do; changes nothing
  status            the pool, layers and devices: observed state against desired
  events            the event log (--json: NDJSON; --follow: keep printing)
  up                converge to the recorded desired state (after a reboot or a crash)
  down              unmount and deactivate everything, keeping all data
  destroy           delete every device, the pool and its backing files
  doctor            check the pool's health and the log against the kernel; says how to repair
  watch -f FILE     keep converged: follow FILE, repair drift, grow the pool
  snapshotter -f FILE --socket PATH
                    serve containerd's snapshotter API on the pool FILE names (docs/containerd.md)
  gc [--yes]        delete orphan thin ids and layers no longer listed (shows them without --yes)
  pool grow --data SIZE [--metadata SIZE]
                    grow a file-backed pool (sparse files, loop devices, pool table)
  sim reboot        (development) drop the simulated kernel's volatile state

Global options:
  --state-dir DIR   where the event log, snapshot, lock and pool files live
                    (default: ./state in a checkout, /var/lib/thinlayer otherwise,
                    or $THINLAYER_STATE_DIR)
  --backend B       auto (default: the real kernel where /dev/mapper/control exists and
                    you are root, else the simulated kernel), kernel, or sim
  --json            machine-readable output on stdout
  -q, --quiet       no progress lines
  -h, --help        help; \`thinlayer help COMMAND\` for one command

Exit codes: 0 converged, 1 failed, 2 bad input (the message names the file and field).

Example:
  thinlayer apply -f examples/web.yaml --yes
  thinlayer status
  thinlayer sim reboot && thinlayer up`;

export const COMMAND_HELP: Record<string, string> = {
  apply: `thinlayer apply -f FILE [--yes] [--json]

Validates FILE (a manifest, see docs/manifest.md), records it as the desired state, and takes
every step to reach it: the pool, the base filesystem, layer snapshots, device snapshots,
activation and mounts. Each kernel step is logged before and after it runs, so a crash at any
point is recovered by the next apply or up. Applying the same manifest twice changes nothing.

Steps that delete devices (dropped from the manifest) are shown first and need confirmation:
a prompt on a terminal, or --yes. Without either, nothing is changed and the exit code is 2.

--json prints {"outcome","runId","steps","plan"} when done.`,
  plan: `thinlayer plan [-f FILE] [--json]

Shows the steps apply -f FILE would take (without -f: the steps up would take), each marked
+ create, ~ update or - destroy. Changes nothing and takes no lock.
--json prints {"steps": [...], "impact": "...", "blockers": [...]}; steps is empty when
everything is in its desired state.`,
  status: `thinlayer status [--json]

The pool (mode, data and metadata use, transaction id), each layer (parent, thin id, devices
using it) and each device (observed state, desired state, mountpoint).
--json prints {"pool", "layers", "devices", ...}; each device has name, state, desired and mountpoint.`,
  events: `thinlayer events [--json] [--follow] [--since SEQ]

The event log: every desired state recorded and every step's intent and outcome.
--json prints one JSON event a line (NDJSON); --follow keeps printing new events until interrupted.`,
  up: `thinlayer up

Brings everything back to the recorded desired state, with no manifest: after a reboot, a
crash, or thinlayer down. Interrupted steps are completed first.`,
  down: `thinlayer down

Unmounts and deactivates every device and the pool, and detaches the loop devices. All data
stays; thinlayer up brings it back.`,
  destroy: `thinlayer destroy [--yes]

Deletes every device and layer, discarding their blocks, then the pool and its backing files.
Asks for confirmation on a terminal; --yes confirms without asking.`,
  doctor: `thinlayer doctor [--json]

Checks the pool's health (mode, needs_check, data and metadata use, warning at 80/90/95%) and
compares the log with the kernel: thin ids in the pool the log does not own (orphans), thin ids
the log owns that the pool lacks, devices not active or mounted as the log says, thin tables that
name another thin id. Each finding has a code, a severity and the command that repairs it;
docs/recovery.md explains them all. Changes nothing and takes no lock.
Exit codes: 0 healthy (warnings allowed), 1 when any finding is an error.
--json prints {"pool", "orphans", "missing", "thinIds", "findings": [{code, severity, subject, message, repair}], ...}.`,
  gc: `thinlayer gc [--yes] [--json]

Deletes orphan thin ids (in the pool, not in the log), layers the manifest no longer lists, records
of thin ids the pool lost (so that up builds them again), and thinlayer devices on the pool that
the log never created. Without --yes, shows what it would delete and changes nothing. Every
deletion is logged before and after, like any other step.
--json prints {"dryRun", "blockers", "steps", "skipped", ...}; with --yes also "done".`,
  watch: `thinlayer watch -f FILE [--interval DURATION] [--metrics-port N] [--json]

Runs a reconcile at start, when FILE changes, every --interval (default 30s), on SIGHUP, on pool
events and on requests (files dropped in STATE_DIR/requests/). Invalid edits are reported and the
last valid manifest kept; edits that delete devices wait for \`apply -f FILE --yes\`. File-backed
pools grow by 20% at 80% use. The lock is held only during runs; SIGINT/SIGTERM finish the current
step and exit 0. Terminal: a live view; --json: NDJSON events; --metrics-port: Prometheus metrics on
127.0.0.1. See docs/operations.md.`,
  pool: `thinlayer pool grow --data SIZE [--metadata SIZE] [--json]

Grows a file-backed pool: extends the sparse data (and metadata) file, makes the loop device take
the new size, and reloads the live thin-pool table. Sizes only grow. For a pool on block devices,
grow the devices yourself; the next activation takes their size. Logged as a pool.grow step, and
finished by the next command if a crash interrupts it.`,
  snapshotter: `thinlayer snapshotter -f FILE --socket PATH [--state-dir DIR] [--backend B]

Serves containerd.services.snapshots.v1.Snapshots on the unix socket PATH (mode 0600), for
containerd's proxy plugin ([proxy_plugins.thinlayer] type = "snapshot", address = "PATH"). The
pool is the one FILE's \`pool:\` names (FILE may hold only that); it and its base are made when
missing. Snapshots are thin snapshots in that pool, logged like every other change: a crash at any
point is completed or rolled back at the next start, and active snapshots are activated again.
The socket exists only while the service is ready. The state dir's lock is held only while
requests change something, so apply, status and doctor run beside it. SIGTERM/SIGINT: calls under
way finish, the socket is removed, exit 0. See docs/containerd.md.`,
  sim: `thinlayer sim reboot

Development aid for the simulated kernel: drops its volatile state (device-mapper devices, loop
devices, mounts) as a reboot would, keeping pool metadata and device contents.`,
};
