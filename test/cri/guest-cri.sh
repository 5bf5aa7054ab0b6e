#!/bin/bash
# In the VM: Debian's containerd with its CRI plugin on, `snapshotter = "thinlayer"`, and the
# kubelet's calls made by test/cri/cri-e2e.ts (bundled into test/vm/.work/cri-e2e.mjs on the host).
#
#   guest-cri.sh IMAGE_TAR IMAGE SANDBOX_TAR SANDBOX_IMAGE MESSAGE PODS
#
# thinlayer's state dir is the image-filesystem path containerd's CRI plugin reports in
# ImageFsInfo (`<containerd root>/io.containerd.snapshotter.v1.thinlayer`), as docs/containerd.md
# sets a node up. Steps: the kubelet's calls on one pod; PODS pods at once; a SIGKILL of the
# snapshotter while pods start, and its restart; a restart of containerd with pods running; after
# each, pods are listed, removed and made again, and doctor finds no thin id leaked or lost; then
# RemoveImage of both images, containerd's garbage collector removes every snapshot, SIGTERM stops
# the snapshotter with status 0, and the pool holds its base alone.
set -u
cd "$(dirname "$0")/../.."
. test/containerd/guest-lib.sh
IMAGE_TAR=$1 IMAGE=$2 SANDBOX_TAR=$3 SANDBOX_IMAGE=$4 MESSAGE=$5 PODS=$6
DIR=/run/tl-disk/cri
ROOT=$DIR/containerd
STATE=$ROOT/io.containerd.snapshotter.v1.thinlayer
MANIFEST=$DIR/snapshotter.yaml
DRIVE="node test/vm/.work/cri-e2e.mjs"
# /init ran this guest chrooted in /mnt of its initramfs: ExecSync enters the container's root from there (cri-e2e.ts).
export TL_CRI_EXEC_ROOT=/mnt
SNAP=(-n k8s.io snapshots --snapshotter thinlayer)

# drive STEP ARGS...: one step of the CRI driver; its TL-CRI lines go to the host.
drive() {
  local t0=$(now_ms)
  $DRIVE "$@" || {
    grep -i 'error' /tmp/containerd.log | grep -v 'failed to load cni' | tail -8 | sed 's/^/TL-CTD-CTDLOG /'
    ctr -n k8s.io snapshots --snapshotter thinlayer ls | sed 's/^/TL-CTD-SNAPS /'
    ctr -n k8s.io run --rm --snapshotter thinlayer "$IMAGE" diagnose /bin/ls /etc 2>&1 | tr '\n' ' ' | sed 's/^/TL-CTD-CTR-ETC /'
    echo
    ctd_fail "CRI step $1"
    exit 1
  }
  ctd_say "$1-took-ms=$(($(now_ms) - t0))"
}

# doctor_clean WHEN: doctor beside the running snapshotter finds no thin id leaked or lost.
doctor_clean() {
  local out
  out=$($TL_CLI doctor --json --backend kernel --state-dir "$STATE" 2>/tmp/doctor.err | tr -d '\n')
  echo "TL-CTD doctor-$1=$out"
}

wait_for_proxy() {
  local i
  for i in $(seq 1 100); do
    ctr "${SNAP[@]}" ls >/dev/null 2>&1 && return 0
    sleep 0.3
  done
  ctd_fail "containerd does not reach the restarted snapshotter"
  exit 1
}

cri_config() {
  mkdir -p /run/containerd /run/containerd-opt /run/cni/net.d "$ROOT"
  cat >/run/containerd-config.toml <<TOML
version = 2
root = "$ROOT"
state = "/run/containerd-state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$CTD_SOCKET"

[plugins."io.containerd.internal.v1.opt"]
  path = "/run/containerd-opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$SANDBOX_IMAGE"
  stats_collect_period = 2
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "thinlayer"
  # Host-network pods need no CNI; the directories only have to exist (the root is read-only).
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/run/cni/net.d"

[proxy_plugins.thinlayer]
  type = "snapshot"
  address = "$SNAP_SOCKET"
TOML
}

rm -rf "$DIR"
mkdir -p "$STATE"
printf 'version: 1\npool:\n  name: cri\n  data: { file: data.img, size: 4G }\n  metadata: { file: metadata.img, size: 128M }\n  baseSize: 256M\n  filesystem: ext4\n' >"$MANIFEST"
snap_start "$STATE" "$MANIFEST" || exit 1
cri_config
ctd_start || exit 1
grep -q 'Get image filesystem path' /tmp/containerd.log && ctd_say "ctd-imagefs-log=$(grep -o 'Get image filesystem path.*' /tmp/containerd.log | head -1 | tr -d '"\\')"
for tar in "$SANDBOX_TAR" "$IMAGE_TAR"; do
  ctr -n k8s.io images import --snapshotter thinlayer "$tar" >/tmp/import.out 2>&1 || { cat /tmp/import.out; ctd_fail "ctr -n k8s.io images import $tar"; exit 1; }
done

drive basic "$CTD_SOCKET" "$SNAP_SOCKET" "$IMAGE" "$SANDBOX_IMAGE" "$STATE" "$MESSAGE"
doctor_clean basic
drive pods "$PODS" "$CTD_SOCKET" "$IMAGE" "$MESSAGE"
doctor_clean pods

# A SIGKILL of the snapshotter while pods start: once a few of their snapshots exist.
before=$(ctr "${SNAP[@]}" ls | tail -n +2 | wc -l)
$DRIVE start-pods 6 "$CTD_SOCKET" "$IMAGE" >/tmp/start-pods.out 2>&1 &
DRIVER=$!
for i in $(seq 1 600); do
  [ "$(ctr "${SNAP[@]}" ls 2>/dev/null | tail -n +2 | wc -l)" -ge $((before + 3)) ] && break
  kill -0 $DRIVER 2>/dev/null || break
  sleep 0.2
done
ctd_say "killed-with-snapshots=$(($(ctr "${SNAP[@]}" ls | tail -n +2 | wc -l) - before))"
snap_stop KILL
snap_start "$STATE" "$MANIFEST" || exit 1
wait_for_proxy
wait $DRIVER
grep '^TL-CRI' /tmp/start-pods.out
drive converge "$CTD_SOCKET" "$IMAGE" "$MESSAGE"
doctor_clean after-kill

# A restart of containerd with pods running.
$DRIVE start-pods 2 "$CTD_SOCKET" "$IMAGE" || { ctd_fail "pods before the containerd restart"; exit 1; }
ctd_stop TERM
ctd_start || exit 1
ctd_say "containerd restarted"
drive converge "$CTD_SOCKET" "$IMAGE" "$MESSAGE"
doctor_clean after-restart

drive remove-images "$CTD_SOCKET" "$SNAP_SOCKET" "$IMAGE" "$SANDBOX_IMAGE"
ctd_stop TERM
snap_stop TERM
ctd_say "snapshotter-exit=$SNAP_STATUS"
doctor_clean end
