#!/bin/sh
# What thinlayer's converge does, done the way containerd's devmapper snapshotter does it: one
# dmsetup, losetup, mkfs or mount process per step, no log, no recovery. It is what a user would
# script instead of thinlayer, and the benchmark's yardstick.
#
#   dmsetup-converge.sh DIR MOUNTS DEVICES CHAIN
#
# DIR gets the pool's sparse files; a pool `bsh-pool` (64 KiB blocks) is made on them; thin id 0 is
# the base (ext4), ids 1..CHAIN a chain of layer snapshots, and each of DEVICES writable devices a
# snapshot of the last layer, activated as bsh-dNNN and mounted (with discard) at MOUNTS/dNNN.
# Needs DM_DISABLE_UDEV=1 where no udev runs, so that dmsetup makes the /dev/mapper nodes itself.
# Prints `processes=N`: the processes it ran for the steps.
set -eu
DIR=$1 MOUNTS=$2 DEVICES=$3 CHAIN=$4
POOL=bsh-pool
DATA_BYTES=$((8 * 1024 * 1024 * 1024))
BASE_SECTORS=$((256 * 1024 * 1024 / 512))
BLOCK_SECTORS=128
processes=0
run() {
  processes=$((processes + 1))
  "$@"
}
# dNNN without a subshell: a fork costs as much as a step under emulation.
pad() {
  if [ "$1" -lt 10 ]; then name=d00$1; elif [ "$1" -lt 100 ]; then name=d0$1; else name=d$1; fi
}

mkdir -p "$DIR"
run truncate -s "$DATA_BYTES" "$DIR/data.img"
run truncate -s 256M "$DIR/metadata.img"
META=$(losetup -f --show "$DIR/metadata.img")
DATA=$(losetup -f --show "$DIR/data.img")
processes=$((processes + 2))
DATA_SECTORS=$((DATA_BYTES / 512))
LOW_WATER=$((DATA_SECTORS / BLOCK_SECTORS / 20))
run dmsetup create "$POOL" --table "0 $DATA_SECTORS thin-pool $META $DATA $BLOCK_SECTORS $LOW_WATER 1 skip_block_zeroing"

run dmsetup message "$POOL" 0 "create_thin 0"
run dmsetup create bsh-base --table "0 $BASE_SECTORS thin /dev/mapper/$POOL 0"
run mkfs.ext4 -q -L bsh-base /dev/mapper/bsh-base
run dmsetup remove bsh-base

id=1
origin=0
while [ "$id" -le "$CHAIN" ]; do
  run dmsetup message "$POOL" 0 "create_snap $id $origin"
  origin=$id
  id=$((id + 1))
done

i=0
while [ "$i" -lt "$DEVICES" ]; do
  pad "$i"
  run dmsetup message "$POOL" 0 "create_snap $id $origin"
  run dmsetup create "bsh-$name" --table "0 $BASE_SECTORS thin /dev/mapper/$POOL $id"
  run mkdir -p "$MOUNTS/$name"
  run mount -t ext4 -o discard "/dev/mapper/bsh-$name" "$MOUNTS/$name"
  id=$((id + 1))
  i=$((i + 1))
done
echo "processes=$processes"
