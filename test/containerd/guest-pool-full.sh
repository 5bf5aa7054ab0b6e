#!/bin/bash
# In the VM: a small file-backed pool under `thinlayer snapshotter --backend kernel`, filled from
# inside a container by Debian's containerd, ctr and runc.
#
#   guest-pool-full.sh IMAGE_TAR IMAGE_NAME
#
# A container `keeper` writes a file in its root and stops (its snapshot stays). A container
# `filler` writes zeros with O_DIRECT until the pool's data space runs out: dd must end with ENOSPC
# (the pool's noSpaceTimeout is 5 s; the kernel's default is 60 s, and 0 would hang), not hang.
# While the pool is full, a Prepare through containerd and a `ctr run` are refused by pool.minFree
# with its message. Then `filler` is removed (containerd's garbage collector removes its snapshot
# through the proxy), the pool has room again and is writable, a new container runs and writes,
# `keeper` finds its file. Then `thinlayer watch` runs beside the snapshotter: a container takes the
# pool past 80%, watch grows it, a container still runs. Everything is removed, and doctor finds
# nothing leaked or lost.
# Results are `TL-CTD KEY=VALUE` lines for the host; a failed step prints TL-CTD-FAIL.
set -u
cd "$(dirname "$0")/../.."
. test/containerd/guest-lib.sh
DIR=/run/tl-disk/pool-full
STATE=$DIR/state
SNAP=(--snapshotter thinlayer)
POOL=thinlayer-ctdfull-pool
IMAGE_TAR=$1 IMAGE=$2

# The pool's data use, `USED/TOTAL` blocks, and its mode, from its status line.
pool_data() { dmsetup status "$POOL" | awk '{print $6}'; }
pool_mode() { dmsetup status "$POOL" | awk '{print $8}'; }
free_pct() { pool_data | awk -F/ '{printf "%d", ($2 - $1) * 100 / $2}'; }

rm -rf "$DIR"
mkdir -p "$DIR"
cat >"$DIR/snapshotter.yaml" <<'YAML'
version: 1
pool:
  name: ctdfull
  data: { file: data.img, size: 96M }
  metadata: { file: metadata.img, size: 16M }
  baseSize: 256M
  filesystem: ext4
  minFree: 10%
  noSpaceTimeout: 5s
YAML
sync
snap_start "$STATE" "$DIR/snapshotter.yaml" || exit 1
ctd_say "no-space-timeout=$(cat /sys/module/dm_thin_pool/parameters/no_space_timeout)"
ctd_config "$DIR/containerd" ""
ctd_start || exit 1
ctr images import "${SNAP[@]}" "$IMAGE_TAR" >/tmp/import.out 2>&1 || { cat /tmp/import.out; ctd_fail "ctr images import"; exit 1; }

ctr run "${SNAP[@]}" "$IMAGE" keeper sh -c 'cat /etc/tl-keep 2>/dev/null || { echo kept-write > /etc/tl-keep; sync; echo first-run; }' >/tmp/keeper-1.out 2>&1 || { cat /tmp/keeper-1.out; ctd_fail "ctr run keeper"; exit 1; }
ctd_say "keeper-1=$(tr '\n' ' ' </tmp/keeper-1.out | sed 's/ *$//')"
ctd_say "before-fill=$(pool_data) free $(free_pct)%"

# Fill: 1 MiB direct writes, more than the pool holds; each one reaches the pool at once, so the
# write that finds no space gets the pool's error, not a later writeback. `timeout` only reports a
# hang (far beyond the 5 s the pool is given).
t0=$(now_ms)
timeout 300 ctr run "${SNAP[@]}" "$IMAGE" filler sh -c '/bin/busybox dd if=/dev/zero of=/fill bs=1M count=400 oflag=direct; echo "dd-exit=$?"' >/tmp/filler.out 2>&1
status=$?
ctd_say "fill-ms=$(($(now_ms) - t0))"
ctd_say "fill-status=$status"
ctd_say "fill-dd-exit=$(grep -o 'dd-exit=[0-9]*' /tmp/filler.out | cut -d= -f2)"
ctd_say "fill-error=$(grep -o 'No space left on device' /tmp/filler.out | head -1)"
ctd_say "fill-output=$(tr '\n' ' ' </tmp/filler.out | cut -c1-300)"
ctd_say "after-fill=$(pool_data) free $(free_pct)% mode $(pool_mode)"

# Below pool.minFree: a Prepare through containerd's Snapshots API, and a container's root.
ctr snapshots "${SNAP[@]}" prepare tl-probe >/tmp/probe.out 2>&1
ctd_say "probe-status=$?"
ctd_say "probe=$(tr '\n' ' ' </tmp/probe.out | cut -c1-400)"
ctr run --rm "${SNAP[@]}" "$IMAGE" refused true >/tmp/refused.out 2>&1
ctd_say "refused-status=$?"
ctd_say "refused=$(tr '\n' ' ' </tmp/refused.out | cut -c1-400)"

# The filler removed: its snapshot goes through containerd's garbage collector, its blocks with it.
ctr containers rm filler >/tmp/rm.out 2>&1 || { cat /tmp/rm.out; ctd_fail "ctr containers rm filler"; exit 1; }
for i in $(seq 1 200); do
  [ "$(free_pct)" -ge 50 ] && break
  sleep 0.3
done
ctd_say "after-remove=$(pool_data) free $(free_pct)% mode $(pool_mode)"

ctr run --rm "${SNAP[@]}" "$IMAGE" after sh -c 'echo after-write > /etc/tl-after && cat /etc/tl-after /etc/tl-message' >/tmp/after.out 2>&1 || { cat /tmp/after.out; ctd_fail "ctr run after"; exit 1; }
ctd_say "after=$(tr '\n' ' ' </tmp/after.out | sed 's/ *$//')"
ctr task start keeper >/tmp/keeper-2.out 2>&1 || { cat /tmp/keeper-2.out; ctd_fail "ctr task start keeper"; exit 1; }
ctd_say "keeper-2=$(tr '\n' ' ' </tmp/keeper-2.out | sed 's/ *$//')"

# watch beside the snapshotter, on the same state dir and manifest: a container's writes take the
# pool past 80%, and watch grows the data file while the snapshotter serves.
$TL_CLI watch -f "$DIR/snapshotter.yaml" --state-dir "$STATE" --backend kernel --interval 2s --json >/tmp/watch.log 2>&1 &
WATCH_PID=$!
for i in $(seq 1 300); do
  grep -q '"watch.run-done"' /tmp/watch.log && break
  sleep 0.3
done
ctr run "${SNAP[@]}" "$IMAGE" grower sh -c '/bin/busybox dd if=/dev/zero of=/grow bs=1M count=76 oflag=direct 2>&1; echo "dd-exit=$?"' >/tmp/grower.out 2>&1
ctd_say "grower=$(grep -o 'dd-exit=[0-9]*' /tmp/grower.out)"
for i in $(seq 1 300); do
  [ "$(pool_data | cut -d/ -f2)" -gt 1536 ] && break
  sleep 0.3
done
ctd_say "after-grow=$(pool_data) free $(free_pct)% mode $(pool_mode) file $(stat -c %s "$STATE/data.img")"
ctr run --rm "${SNAP[@]}" "$IMAGE" beside-watch sh -c 'echo beside > /etc/tl-beside && cat /etc/tl-beside' >/tmp/beside.out 2>&1 || { cat /tmp/beside.out; ctd_fail "ctr run beside-watch"; }
ctd_say "beside-watch=$(tr '\n' ' ' </tmp/beside.out | sed 's/ *$//')"
kill -TERM "$WATCH_PID"
wait "$WATCH_PID"
ctd_say "watch-exit=$?"
ctd_say "watch-grown=$(grep -c '"pool.grown"' /tmp/watch.log)"
grep -q '"pool.grown"' /tmp/watch.log || tail -20 /tmp/watch.log | sed 's/^/TL-CTD-WATCHLOG /'
ctr containers rm grower

ctr containers rm keeper
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
