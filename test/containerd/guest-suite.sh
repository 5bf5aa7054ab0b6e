#!/bin/bash
# In the VM: containerd's snapshotter conformance suite against `thinlayer snapshotter --backend
# kernel` on a real pool (loop devices over sparse files on the VM's disk).
#
#   guest-suite.sh SUITE_BINARY [go test flags...]
#
# Runs the suite twice against one snapshotter: one case at a time (`-test.parallel 1`, pass
# `seq`), then four at a time (`-test.parallel 4`, pass `par4`). Prints each pass's -test.v output
# prefixed `TL-SUITE-PASS ` and `TL-CTD suite-status-PASS=N ms=M`, then `TL-CTD suite-status=N`
# (the first failing pass's status, or 0), `TL-CTD doctor=JSON` (after every case removed what it
# made) and `TL-CTD snapshotter-exit=N`.
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
status=0
t_all=$(now_ms)
for pass in seq:1 par4:4; do
  tag=${pass%%:*}
  t0=$(now_ms)
  # The suite's scratch directories (mountpoints, test files) go to the guest's tmpfs /tmp.
  THINLAYER_SNAPSHOTTER_SOCKET=$SNAP_SOCKET "$SUITE" -test.v -test.timeout 30m -test.parallel "${pass#*:}" "$@" 2>&1 | sed -u "s/^/TL-SUITE-$tag /"
  pass_status=${PIPESTATUS[0]}
  ctd_say "suite-status-$tag=$pass_status ms=$(($(now_ms) - t0))"
  [ "$status" = 0 ] && status=$pass_status
done
ctd_say "suite-status=$status ms=$(($(now_ms) - t_all))"
snap_stop TERM
ctd_say "snapshotter-exit=$SNAP_STATUS"
echo "TL-CTD doctor=$($TL_CLI doctor --json --backend kernel --state-dir "$DIR/state" 2>/tmp/doctor.err | tr -d '\n')"
[ "$status" = 0 ] || ctd_fail "the suite failed"
exit "$status"
