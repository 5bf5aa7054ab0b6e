#!/bin/sh
# Tears down what dmsetup-converge.sh made, step by step as containerd's devmapper snapshotter
# removes a snapshot with discard_blocks on (thinlayer discards too, so the host gets the space
# back): unmount, discard, deactivate, delete the thin id; then the layers, the base, the pool,
# the loop devices and the files.
#
#   dmsetup-teardown.sh DIR MOUNTS DEVICES CHAIN
#
# Prints `processes=N`: the processes it ran for the steps.
set -eu
DIR=$1 MOUNTS=$2 DEVICES=$3 CHAIN=$4
POOL=bsh-pool
processes=0
run() {
  processes=$((processes + 1))
  "$@"
}
# dNNN without a subshell: a fork costs as much as a step under emulation.
pad() {
  if [ "$1" -lt 10 ]; then name=d00$1; elif [ "$1" -lt 100 ]; then name=d0$1; else name=d$1; fi
}

i=0
id=$((CHAIN + 1))
while [ "$i" -lt "$DEVICES" ]; do
  pad "$i"
  run umount "$MOUNTS/$name"
  run blkdiscard "/dev/mapper/bsh-$name"
  run dmsetup remove "bsh-$name"
  run dmsetup message "$POOL" 0 "delete $id"
  id=$((id + 1))
  i=$((i + 1))
done

id=$CHAIN
while [ "$id" -ge 0 ]; do
  run dmsetup message "$POOL" 0 "delete $id"
  id=$((id - 1))
done

META=$(losetup -j "$DIR/metadata.img")
DATA=$(losetup -j "$DIR/data.img")
processes=$((processes + 2))
META=${META%%:*}
DATA=${DATA%%:*}
run dmsetup remove "$POOL"
run losetup -d "$META" "$DATA"
run rm -f "$DIR/data.img" "$DIR/metadata.img"
echo "processes=$processes"
