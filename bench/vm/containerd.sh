#!/bin/bash
# The containerd benchmark inside the VM, one boot: thinlayer's snapshotter, containerd's devmapper
# snapshotter (on a pool of its own made here with dmsetup, as containerd's docs tell users to)
# and overlayfs, side by side. Every figure is one `TL-BENCH phase=NAME key=value...` line.
#
#   containerd.sh WORK ROOTS ROUNDS KILLS
#
# WORK (read-only here) holds the CLI bundle, the bench-roots binary and the image archives
# (import-SNAPSHOTTER-ROUND.tar, kill-SNAPSHOTTER-K.tar). The order of the snapshotters rotates
# every round, so a host growing busier or quieter weighs on all of them alike.
set -u
WORK=$1 ROOTS=$2 ROUNDS=$3 KILLS=$4
cd "$(dirname "$0")/../.."
. test/containerd/guest-lib.sh
TL_CLI="node bench/vm/cli.mjs $WORK/thinlayer.mjs"
DISK=/run/tl-disk
SIDES=(thinlayer devmapper overlayfs)
emit() { echo "TL-BENCH $*"; }
err() { sed 's/^/TL-BENCH-ERR /' "$1" | tail -"${2:-10}"; }

# overlayfs, the reference: its module is not in the VM's initramfs; the host's modules are visible.
modprobe overlay || { emit "phase=setup status=1 step=modprobe-overlay"; exit 1; }
# udev: containerd's devmapper snapshotter finds its pool and devices by /dev/mapper paths.
mkdir -p /run/udev
/lib/systemd/systemd-udevd --daemon >/dev/null 2>&1 || { emit "phase=setup status=1 step=udevd"; exit 1; }
udevadm trigger --action=add >/dev/null 2>&1
udevadm settle

# A pool as containerd's devmapper documentation makes one: two loop devices over sparse files,
# a zeroed metadata start, `dmsetup create POOL --table "0 SECTORS thin-pool META DATA 128 32768"`.
make_pool() { # NAME DIR
  mkdir -p "$2"
  truncate -s 8G "$2/data"
  truncate -s 256M "$2/metadata"
  local data meta
  data=$(losetup --find --show "$2/data") && meta=$(losetup --find --show "$2/metadata") || return 1
  dd if=/dev/zero of="$meta" bs=4096 count=1 status=none
  dmsetup create "$1" --table "0 $((8 * 1024 * 1024 * 2)) thin-pool $meta $data 128 32768" || return 1
  udevadm settle
  echo "$meta" >"$2/metadata-loop"
}
make_pool dmroots "$DISK/dm-roots-pool" || { emit "phase=setup status=1 step=pool-roots"; exit 1; }
make_pool dmctd "$DISK/dm-ctd-pool" || { emit "phase=setup status=1 step=pool-ctd"; exit 1; }
mkdir -p "$DISK/tl"
printf 'version: 1\npool:\n  name: ctdbench\n  data: { file: data.img, size: 8G }\n  metadata: { file: metadata.img, size: 256M }\n  blockSize: 64K\n  baseSize: 256M\n  filesystem: ext4\n' >"$DISK/tl/snapshotter.yaml"
# Read node, the bundle and the tools once, so that no side pays for the first read over 9p.
cat "$WORK"/*.mjs "$WORK/bench-roots" >/dev/null
$TL_CLI --help >/dev/null
for tool in containerd ctr runc containerd-shim-runc-v2 dmsetup mkfs.ext4 mount umount; do command -v "$tool" | xargs cat >/dev/null; done
t0=$(now_ms)
snap_start "$DISK/tl/state" "$DISK/tl/snapshotter.yaml" || exit 1
emit "phase=ready uptime=$(cut -d' ' -f1 /proc/uptime) kernel=$(uname -r) snapshotter-start-ms=$(($(now_ms) - t0))"

echo "TL-BENCH-PROGRESS container roots: $ROOTS per snapshotter"
"$WORK/bench-roots" roots -n "$ROOTS" -mnt /run/bench-roots -thinlayer "$SNAP_SOCKET" \
  -devmapper-pool dmroots -devmapper-root "$DISK/dm-roots" -overlay-root "$DISK/ov-roots" 2>/tmp/roots.err
emit "phase=roots status=$?"
err /tmp/roots.err

ctd_config "$DISK/containerd" "
[plugins.\"io.containerd.snapshotter.v1.devmapper\"]
  pool_name = \"dmctd\"
  root_path = \"$DISK/dm-ctd\"
  base_image_size = \"256MB\""
ctd_start || exit 1
ctr plugins ls | grep -q 'io.containerd.snapshotter.v1 *devmapper .* ok' || { ctr plugins ls | sed 's/^/TL-BENCH-ERR /'; emit "phase=setup status=1 step=devmapper-plugin"; exit 1; }

# wait_for_proxy as the ctr scenario does (containerd redials with a backoff of at most 3 s).
wait_for_proxy() {
  local i
  for i in $(seq 1 100); do ctr snapshots --snapshotter thinlayer ls >/dev/null 2>&1 && return 0; sleep 0.3; done
  return 1
}

echo "TL-BENCH-PROGRESS imports: $ROUNDS rounds"
for r in $(seq 0 $((ROUNDS - 1))); do
  for j in 0 1 2; do
    sn=${SIDES[$(((r + j) % 3))]}
    t0=$(now_ms)
    ctr images import --snapshotter "$sn" "$WORK/import-$sn-$r.tar" >/tmp/import.out 2>&1
    status=$?
    ms=$(($(now_ms) - t0))
    emit "phase=import sn=$sn round=$r status=$status ms=$ms"
    if [ $status = 0 ]; then echo "$sn $ms" >>/tmp/import-times; else err /tmp/import.out; fi
  done
done

echo "TL-BENCH-PROGRESS ctr run --rm echo: $ROUNDS rounds"
for r in $(seq 0 $((ROUNDS - 1))); do
  for j in 0 1 2; do
    sn=${SIDES[$(((r + j) % 3))]}
    t0=$(now_ms)
    out=$(ctr run --rm --snapshotter "$sn" "docker.io/library/bench-$sn:0" "run-$sn-$r" echo hello 2>/tmp/run.err)
    status=$?
    emit "phase=run sn=$sn round=$r status=$status ms=$(($(now_ms) - t0)) out=$out"
    [ $status = 0 ] || err /tmp/run.err
  done
done

# SIGKILLs during an import, spread over the import's length (the median measured above).
median_import() { # SNAPSHOTTER: of the kill images, timed once each before the kills
  grep -h "^$1 " /tmp/kill-import-times 2>/dev/null | cut -d' ' -f2 | sort -n | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'
}
kills() { # SNAPSHOTTER
  local sn=$1 k ms delay pid t0
  # The kill images are smaller than the 10-layer ones: time one whole import of that size first.
  t0=$(now_ms)
  ctr images import --snapshotter "$sn" "$WORK/kill-$sn-0.tar" >/tmp/kill-import.out 2>&1 || { err /tmp/kill-import.out; emit "phase=kill-measure sn=$sn status=1"; return 1; }
  echo "$sn $(($(now_ms) - t0))" >>/tmp/kill-import-times
  emit "phase=kill-measure sn=$sn status=0 ms=$(($(now_ms) - t0))"
  ms=$(median_import "$sn")
  for k in $(seq 1 "$KILLS"); do
    # Over the first 90% of the median: an import may run a little faster than the median.
    delay=$(awk -v m="$ms" -v k="$k" -v n="$KILLS" 'BEGIN { printf "%.3f", 0.9 * m * (k - 0.5) / n / 1000 }')
    ctr images import --snapshotter "$sn" "$WORK/kill-$sn-$k.tar" >/tmp/kill-import.out 2>&1 &
    pid=$!
    sleep "$delay"
    if [ "$sn" = thinlayer ]; then
      kill -KILL "$SNAP_PID"
      wait "$SNAP_PID" 2>/dev/null
      wait "$pid"
      emit "phase=kill sn=$sn k=$k delay=$delay import-status=$?"
      SNAP_PID=
      snap_start "$DISK/tl/state" "$DISK/tl/snapshotter.yaml" || { emit "phase=kill-restart sn=$sn k=$k status=1"; return 1; }
      wait_for_proxy || { emit "phase=kill-restart sn=$sn k=$k status=1"; return 1; }
    else
      kill -KILL "$CTD_PID"
      wait "$CTD_PID" 2>/dev/null
      wait "$pid"
      emit "phase=kill sn=$sn k=$k delay=$delay import-status=$?"
      CTD_PID=
      ctd_start || { emit "phase=kill-restart sn=$sn k=$k status=1"; return 1; }
    fi
  done
}
echo "TL-BENCH-PROGRESS $KILLS SIGKILLs of the snapshotter during an import; $KILLS of containerd (devmapper)"
kills thinlayer
kills devmapper

# What the kills left. thinlayer: doctor compares the pool's thin ids with the log, the service
# stopped first; devices in a failed state are counted from dmsetup status.
ctd_stop TERM
snap_stop TERM
emit "phase=snapshotter-stop status=$SNAP_STATUS"
echo "TL-BENCH-TLDOCTOR $($TL_CLI doctor --json --backend kernel --state-dir "$DISK/tl/state" 2>/tmp/doctor.err | tr -d '\n')"
err /tmp/doctor.err 3
emit "phase=tl-failed-devices count=$(dmsetup status | grep '^ctdbench' | grep -c ' Fail')"
# devmapper: the states in its metadata, and the thin ids its pool holds (thin_ls on a metadata snapshot).
"$WORK/bench-roots" audit -devmapper-root "$DISK/dm-ctd" -devmapper-pool dmctd 2>/tmp/audit.err
err /tmp/audit.err 3
dmsetup message dmctd 0 reserve_metadata_snap
echo "TL-BENCH-DMPOOLIDS $(thin_ls --metadata-snap --no-headers --format DEV "$(cat "$DISK/dm-ctd-pool/metadata-loop")" 2>/tmp/thinls.err | tr '\n' ' ')"
err /tmp/thinls.err 3
dmsetup message dmctd 0 release_metadata_snap
emit "phase=done uptime=$(cut -d' ' -f1 /proc/uptime)"
