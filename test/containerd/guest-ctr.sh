#!/bin/bash
# In the VM: Debian's containerd, ctr and runc on `thinlayer snapshotter --backend kernel`.
#
#   guest-ctr.sh first IMAGE_TAR IMAGE_NAME   import the image, run containers, SIGKILL and restart
#                                             the snapshotter, run again, leave a stopped container
#                                             with a write in its active snapshot, then print
#                                             `TL-CTD power-cut-now` and wait for the power cut
#   guest-ctr.sh second IMAGE_NAME            after the cut, a new boot: run again, start the kept
#                                             container on its snapshot, remove everything, stop
#
# Both containerd's root (its metadata and content) and thinlayer's state are on the VM's disk, as
# on a node. Results are `TL-CTD KEY=VALUE` lines for the host; a failed step prints TL-CTD-FAIL.
set -u
cd "$(dirname "$0")/../.."
. test/containerd/guest-lib.sh
DIR=/run/tl-disk/containerd-ctr
STATE=$DIR/state
SNAP=(--snapshotter thinlayer)

result() { ctd_say "$1=$(tr '\n' ' ' <"/tmp/$1.out" | sed 's/ *$//')"; }
# run_container NAME ARGS...: `ctr run --rm` on the thinlayer snapshotter; its output goes to a result line.
run_container() {
  local name=$1 t0
  shift
  t0=$(now_ms)
  ctr run --rm "${SNAP[@]}" "$IMAGE" "$name" "$@" >"/tmp/$name.out" 2>"/tmp/$name.err" || { cat "/tmp/$name.err"; ctd_fail "ctr run $name"; return 1; }
  ctd_say "$name-ms=$(($(now_ms) - t0))"
  result "$name"
}
# containerd redials the snapshotter with a backoff of at most 3 s: wait until a call goes through.
wait_for_proxy() {
  local t0 i
  t0=$(now_ms)
  for i in $(seq 1 100); do
    ctr snapshots "${SNAP[@]}" ls >/dev/null 2>&1 && { ctd_say "proxy-back-ms=$(($(now_ms) - t0))"; return 0; }
    sleep 0.3
  done
  ctd_fail "containerd does not reach the restarted snapshotter"
}

case $1 in
first)
  IMAGE_TAR=$2 IMAGE=$3
  rm -rf "$DIR"
  mkdir -p "$DIR"
  printf 'version: 1\npool:\n  name: ctdctr\n  data: { file: data.img, size: 4G }\n  metadata: { file: metadata.img, size: 128M }\n  baseSize: 256M\n  filesystem: ext4\n' >"$DIR/snapshotter.yaml"
  sync
  snap_start "$STATE" "$DIR/snapshotter.yaml" || exit 1
  ctd_config "$DIR/containerd" ""
  ctd_start || exit 1
  t0=$(now_ms)
  ctr images import "${SNAP[@]}" "$IMAGE_TAR" >/tmp/import.out 2>&1 || { cat /tmp/import.out; ctd_fail "ctr images import"; exit 1; }
  ctd_say "import-ms=$(($(now_ms) - t0))"
  ctd_say "images=$(ctr images ls -q | tr '\n' ' ')"
  ctd_say "snapshots=$(ctr snapshots "${SNAP[@]}" ls | tail -n +2 | wc -l)"
  run_container run-1 || exit 1
  run_container write-1 sh -c 'echo scratch > /etc/tl-scratch && cat /etc/tl-scratch /etc/tl-message' || exit 1

  snap_stop KILL
  ctd_say "snapshotter killed"
  snap_start "$STATE" "$DIR/snapshotter.yaml" || exit 1
  wait_for_proxy || exit 1
  run_container after-kill || exit 1
  # A container kept with its active snapshot: its first run writes a file there.
  ctr run "${SNAP[@]}" "$IMAGE" kept sh -c 'cat /etc/tl-kept 2>/dev/null || { echo kept-write > /etc/tl-kept; sync; echo first-run; }' >/tmp/kept-1.out 2>&1 || { cat /tmp/kept-1.out; ctd_fail "ctr run kept"; exit 1; }
  result kept-1
  ctd_say "power-cut-now"
  sleep 600
  ;;
second)
  IMAGE=$2
  snap_start "$STATE" "$DIR/snapshotter.yaml" || exit 1
  ctd_config "$DIR/containerd" ""
  ctd_start || exit 1
  ctd_say "images=$(ctr images ls -q | tr '\n' ' ')"
  run_container after-boot || exit 1
  ctr task start kept >/tmp/kept-2.out 2>&1 || { cat /tmp/kept-2.out; ctd_fail "ctr task start kept"; exit 1; }
  result kept-2
  # Remove everything: containerd's garbage collector removes the snapshots through the proxy.
  ctr containers rm kept
  ctr images rm --sync "$IMAGE" >/dev/null
  for i in $(seq 1 100); do
    n=$(ctr snapshots "${SNAP[@]}" ls | tail -n +2 | wc -l)
    [ "$n" = 0 ] && break
    sleep 0.3
  done
  ctd_say "snapshots-left=$n"
  ctd_stop TERM
  snap_stop TERM
  ctd_say "snapshotter-exit=$SNAP_STATUS"
  echo "TL-CTD doctor=$($TL_CLI doctor --json --backend kernel --state-dir "$STATE" 2>/tmp/doctor.err | tr -d '\n')"
  ;;
esac
