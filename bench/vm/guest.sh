#!/bin/bash
# The kernel suite inside the VM, one boot: the same base, layer chain and writable devices
# converged and torn down by thinlayer's CLI and by the dmsetup script, then the library probe.
# The order is thinlayer, script, script, thinlayer (converge, converge, teardown, teardown), so
# that a host growing busier or quieter during the boot weighs on both sides alike.
# Every phase prints one `TL-BENCH phase=NAME key=value...` line for the host to read.
#
#   guest.sh WORK DEVICES CHAIN DEPTH PAIRS SPACE_DEVICES SPACE_FILE_MIB \
#            TRIM_SMALL TRIM_BIG TRIM_BIG_MIB TRIM_ROUNDS TRIM_ROUND_FILES TRIM_ROUND_KIB
#
# WORK (read-only here) holds the CLI bundle, the probe bundle and converge.yaml. Timings come
# from bash's EPOCHREALTIME, so taking them starts no process.
set -u
WORK=$1 DEVICES=$2 CHAIN=$3 DEPTH=$4 PAIRS=$5 SPACE_DEVICES=$6 SPACE_FILE_MIB=$7
TRIM_SMALL=$8 TRIM_BIG=$9 TRIM_BIG_MIB=${10} TRIM_ROUNDS=${11} TRIM_ROUND_FILES=${12} TRIM_ROUND_KIB=${13}
DISK=/run/tl-disk
MOUNTS=/run/bench
HERE=$(dirname "$0")
CLI=(node "$HERE/cli.mjs" "$WORK/thinlayer.mjs")
export DM_DISABLE_UDEV=1 # no udev here: dmsetup makes the /dev/mapper nodes itself

now_ms() { local t=${EPOCHREALTIME/./}; echo $((t / 1000)); }
emit() { echo "TL-BENCH $*"; }
owned() { dmsetup ls 2>/dev/null | grep -c "^$1" || true; }
mounted() { grep -c " $1" /proc/mounts || true; }

# Read node, the bundles and the tools over 9p once, so that neither side pays for the first read.
"${CLI[@]}" --help >/dev/null
cat "$WORK"/*.mjs >/dev/null # the bundles' chunks too: --help reads only the entry
node "$WORK/probe.mjs" --help >/dev/null 2>&1 || true
dmsetup version >/dev/null
for tool in losetup mount umount blkdiscard truncate mkdir; do command -v "$tool" | xargs cat >/dev/null; done
mkfs.ext4 -V >/dev/null 2>&1 || true
emit "phase=ready uptime=$(cut -d' ' -f1 /proc/uptime) kernel=$(uname -r)"
t0=$(now_ms)
"${CLI[@]}" --help >/dev/null
t1=$(now_ms)
emit "phase=cli-start status=0 ms=$((t1 - t0))"

# One timed phase: its name, the dm name prefix and the mount directory of what it leaves, then the
# command. Its stderr goes to /tmp/NAME.err, shown when it fails; the last line of its stdout joins
# the phase line when it is key=value (the script's `processes=N`).
phase() {
  local name=$1 prefix=$2 mounts=$3 t0 t1 out status
  shift 3
  t0=$(now_ms)
  out=$("$@" 2>"/tmp/$name.err")
  status=$?
  t1=$(now_ms)
  out=${out##*$'\n'}
  case $out in *=*) ;; *) out= ;; esac
  emit "phase=$name status=$status ms=$((t1 - t0)) dm=$(owned "$prefix") mounts=$(mounted "$mounts") $out"
  [ "$status" = 0 ] || sed 's/^/TL-BENCH-ERR /' "/tmp/$name.err" | head -20
}
# thinlayer's CLI prints its kernel-call tally on stderr (exported, not prefixed: `env` would be one
# more process inside the timing).
calls() { grep -o 'thinlayer-kernel-calls .*' "/tmp/$1.err" | sed "s/^/TL-BENCH-CALLS $2 /"; }
export THINLAYER_COUNT_KERNEL_CALLS=1

echo "TL-BENCH-PROGRESS thinlayer converge: $DEVICES devices on a chain of $CHAIN layers"
phase thinlayer-converge thinlayer-benchvm- "$MOUNTS/tl/" "${CLI[@]}" apply -f "$WORK/converge.yaml" --yes --backend kernel --state-dir "$DISK/tl" -q
calls thinlayer-converge converge
COUNTED=$(grep -c 'thinlayer-kernel-calls ' /tmp/thinlayer-converge.err || true)

echo "TL-BENCH-PROGRESS script converge"
phase script-converge bsh- "$MOUNTS/sh/" sh "$HERE/dmsetup-converge.sh" "$DISK/sh" "$MOUNTS/sh" "$DEVICES" "$CHAIN"

echo "TL-BENCH-PROGRESS script teardown"
phase script-teardown bsh- "$MOUNTS/sh/" sh "$HERE/dmsetup-teardown.sh" "$DISK/sh" "$MOUNTS/sh" "$DEVICES" "$CHAIN"

echo "TL-BENCH-PROGRESS thinlayer teardown"
phase thinlayer-teardown thinlayer-benchvm- "$MOUNTS/tl/" "${CLI[@]}" destroy --yes --backend kernel --state-dir "$DISK/tl" -q
calls thinlayer-teardown teardown
unset THINLAYER_COUNT_KERNEL_CALLS

echo "TL-BENCH-PROGRESS probe: depth, space, trim$([ "$COUNTED" = 0 ] && echo ', counted converge')"
count=()
[ "$COUNTED" = 0 ] && count=(--count "$WORK/converge.yaml")
node "$WORK/probe.mjs" --dir "$DISK/probe" --mounts "$MOUNTS/probe" --chain "$DEPTH" --pairs "$PAIRS" \
  --space-devices "$SPACE_DEVICES" --space-file-mib "$SPACE_FILE_MIB" \
  --trim-small "$TRIM_SMALL" --trim-big "$TRIM_BIG" --trim-big-mib "$TRIM_BIG_MIB" \
  --trim-rounds "$TRIM_ROUNDS" --trim-round-files "$TRIM_ROUND_FILES" --trim-round-kib "$TRIM_ROUND_KIB" "${count[@]}"
emit "phase=done status=$? uptime=$(cut -d' ' -f1 /proc/uptime)"
