#!/bin/bash
# In the VM: containerd's snapshotter conformance suite against `thinlayer snapshotter --backend
# kernel` on a real pool (loop devices over sparse files on the VM's disk).
#
#   guest-suite.sh SUITE_BINARY [go test flags...]
#
# Prints the suite's own -test.v output prefixed `TL-SUITE `, then `TL-CTD suite-status=N`,
# `TL-CTD doctor=JSON` (after every case removed what it made) and `TL-CTD snapshotter-exit=N`.
set -u
cd "$(dirname "$0")/../.."
. test/containerd/guest-lib.sh
SUITE=$1
shift
DIR=/run/tl-disk/containerd-suite
rm -rf "$DIR"
mkdir -p "$DIR"
cat >"$DIR/snapshotter.yaml" <<'YAML'
version: 1
pool:
  name: ctdsuite
  data: { file: data.img, size: 8G }
  metadata: { file: metadata.img, size: 256M }
  baseSize: 512M
  filesystem: ext4
YAML

t0=$(now_ms)
snap_start "$DIR/state" "$DIR/snapshotter.yaml" || exit 1
ctd_say "snapshotter ready in $(($(now_ms) - t0)) ms"
t0=$(now_ms)
# The suite's scratch directories (mountpoints, test files) go to the guest's tmpfs /tmp.
THINLAYER_SNAPSHOTTER_SOCKET=$SNAP_SOCKET "$SUITE" -test.v -test.timeout 30m "$@" 2>&1 | sed -u 's/^/TL-SUITE /'
status=${PIPESTATUS[0]}
ctd_say "suite-status=$status ms=$(($(now_ms) - t0))"
snap_stop TERM
ctd_say "snapshotter-exit=$SNAP_STATUS"
echo "TL-CTD doctor=$($TL_CLI doctor --json --backend kernel --state-dir "$DIR/state" 2>/tmp/doctor.err | tr -d '\n')"
[ "$status" = 0 ] || ctd_fail "the suite failed"
exit "$status"
