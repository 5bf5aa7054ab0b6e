# Shell functions for the containerd scenarios and benchmarks, sourced in the VM (test/vm) from the
# checkout's directory. They start and stop `thinlayer snapshotter` and Debian's containerd with a
# configuration under the guest's tmpfs (the shared root is read-only): CRI disabled, cgroup2
# mounted for runc, the snapshotter as the proxy plugin `thinlayer`. Every line meant for the host
# starts with TL-CTD; logs are shown, prefixed, when something fails.

TL_CLI=${TL_CLI:-node bin/thinlayer.js}
SNAP_SOCKET=${SNAP_SOCKET:-/run/tl-snapshotter.sock}
CTD_SOCKET=/run/containerd/containerd.sock
SNAP_PID=
SNAP_STATUS=
CTD_PID=

ctd_say() { echo "TL-CTD $*"; }
ctd_fail() {
  echo "TL-CTD-FAIL $*"
  [ -f /tmp/snapshotter.log ] && tail -40 /tmp/snapshotter.log | sed 's/^/TL-CTD-SNAPLOG /'
  [ -f /tmp/containerd.log ] && tail -40 /tmp/containerd.log | sed 's/^/TL-CTD-CTDLOG /'
  return 1
}
now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }

# wait_for_socket PATH SECONDS PID: true once PATH is a socket; false when PID ends or time runs out.
wait_for_socket() {
  local deadline=$(($(now_ms) + $2 * 1000))
  while [ ! -S "$1" ]; do
    kill -0 "$3" 2>/dev/null || return 1
    [ "$(now_ms)" -lt "$deadline" ] || return 1
    sleep 0.1
  done
}

# snap_start STATE_DIR MANIFEST: starts the snapshotter with the kernel backend; returns once its
# socket appears (it appears only when the service is ready).
snap_start() {
  rm -f "$SNAP_SOCKET"
  $TL_CLI snapshotter -f "$2" --socket "$SNAP_SOCKET" --state-dir "$1" --backend kernel >>/tmp/snapshotter.log 2>&1 &
  SNAP_PID=$!
  wait_for_socket "$SNAP_SOCKET" 300 "$SNAP_PID" || { ctd_fail "the snapshotter's socket $SNAP_SOCKET did not appear"; return 1; }
}

# snap_stop [SIGNAL]: TERM (default) must end it with status 0; KILL is a crash.
snap_stop() {
  local sig=${1:-TERM} status
  kill "-$sig" "$SNAP_PID"
  wait "$SNAP_PID"
  status=$?
  SNAP_PID=
  SNAP_STATUS=$status
  if [ "$sig" = TERM ] && [ "$status" != 0 ]; then ctd_fail "the snapshotter ended with status $status after SIGTERM"; return 1; fi
  return 0
}

# ctd_config ROOT EXTRA: writes /run/containerd-config.toml (containerd's root, its metadata and
# content, at ROOT: on the disk when it must outlive a boot), EXTRA appended as it is.
ctd_config() {
  mkdir -p /run/containerd /run/containerd-opt "$1"
  cat >/run/containerd-config.toml <<TOML
version = 2
root = "$1"
state = "/run/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "$CTD_SOCKET"

[plugins."io.containerd.internal.v1.opt"]
  path = "/run/containerd-opt"

[proxy_plugins.thinlayer]
  type = "snapshot"
  address = "$SNAP_SOCKET"
$2
TOML
}

ctd_start() {
  grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts || mount -t cgroup2 none /sys/fs/cgroup || { ctd_fail "mount cgroup2"; return 1; }
  rm -f "$CTD_SOCKET"
  containerd --config /run/containerd-config.toml >>/tmp/containerd.log 2>&1 &
  CTD_PID=$!
  wait_for_socket "$CTD_SOCKET" 120 "$CTD_PID" || { ctd_fail "containerd's socket did not appear"; return 1; }
  # The socket appears before every plugin is loaded: wait until ctr gets an answer.
  local i
  for i in $(seq 1 100); do ctr version >/dev/null 2>&1 && return 0; sleep 0.2; done
  ctd_fail "containerd does not answer ctr"
}

ctd_stop() {
  [ -n "$CTD_PID" ] || return 0
  kill -"${1:-TERM}" "$CTD_PID"
  wait "$CTD_PID"
  CTD_PID=
  return 0
}
