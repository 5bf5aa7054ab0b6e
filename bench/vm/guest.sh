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

echo "TL-BENCH-PROGRESS thinlayer converge: $DEVICES devices on a chain of $CHAIN layers"
t0=$(now_ms)
THINLAYER_COUNT_KERNEL_CALLS=1 "${CLI[@]}" apply -f "$WORK/converge.yaml" --yes --backend kernel --state-dir "$DISK/tl" -q 2>/tmp/tl-apply.err
status=$?
t1=$(now_ms)
emit "phase=thinlayer-converge status=$status ms=$((t1 - t0)) dm=$(owned thinlayer-benchvm-) mounts=$(mounted $MOUNTS/tl/)"
[ "$status" = 0 ] || sed 's/^/TL-BENCH-ERR /' /tmp/tl-apply.err | head -20
grep -o 'thinlayer-kernel-calls .*' /tmp/tl-apply.err | sed 's/^/TL-BENCH-CALLS converge /'
COUNTED=$(grep -c 'thinlayer-kernel-calls ' /tmp/tl-apply.err || true)

echo "TL-BENCH-PROGRESS script converge"
t0=$(now_ms)
out=$(sh "$HERE/dmsetup-converge.sh" "$DISK/sh" "$MOUNTS/sh" "$DEVICES" "$CHAIN" 2>/tmp/sh-converge.err)
status=$?
t1=$(now_ms)
emit "phase=script-converge status=$status ms=$((t1 - t0)) dm=$(owned bsh-) mounts=$(mounted $MOUNTS/sh/) ${out##*$'\n'}"
[ "$status" = 0 ] || sed 's/^/TL-BENCH-ERR /' /tmp/sh-converge.err | head -20

echo "TL-BENCH-PROGRESS script teardown"
t0=$(now_ms)
out=$(sh "$HERE/dmsetup-teardown.sh" "$DISK/sh" "$MOUNTS/sh" "$DEVICES" "$CHAIN" 2>/tmp/sh-teardown.err)
status=$?
t1=$(now_ms)
emit "phase=script-teardown status=$status ms=$((t1 - t0)) dm=$(owned bsh-) mounts=$(mounted $MOUNTS/sh/) ${out##*$'\n'}"
[ "$status" = 0 ] || sed 's/^/TL-BENCH-ERR /' /tmp/sh-teardown.err | head -20

echo "TL-BENCH-PROGRESS thinlayer teardown"
t0=$(now_ms)
THINLAYER_COUNT_KERNEL_CALLS=1 "${CLI[@]}" destroy --yes --backend kernel --state-dir "$DISK/tl" -q 2>/tmp/tl-destroy.err
status=$?
t1=$(now_ms)
emit "phase=thinlayer-teardown status=$status ms=$((t1 - t0)) dm=$(owned thinlayer-benchvm-) mounts=$(mounted $MOUNTS/tl/)"
[ "$status" = 0 ] || sed 's/^/TL-BENCH-ERR /' /tmp/tl-destroy.err | head -20
grep -o 'thinlayer-kernel-calls .*' /tmp/tl-destroy.err | sed 's/^/TL-BENCH-CALLS teardown /'

echo "TL-BENCH-PROGRESS probe: depth, space, trim$([ "$COUNTED" = 0 ] && echo ', counted converge')"
count=()
[ "$COUNTED" = 0 ] && count=(--count "$WORK/converge.yaml")
node "$WORK/probe.mjs" --dir "$DISK/probe" --mounts "$MOUNTS/probe" --chain "$DEPTH" --pairs "$PAIRS" \
  --space-devices "$SPACE_DEVICES" --space-file-mib "$SPACE_FILE_MIB" \
  --trim-small "$TRIM_SMALL" --trim-big "$TRIM_BIG" --trim-big-mib "$TRIM_BIG_MIB" \
  --trim-rounds "$TRIM_ROUNDS" --trim-round-files "$TRIM_ROUND_FILES" --trim-round-kib "$TRIM_ROUND_KIB" "${count[@]}"
emit "phase=done status=$? uptime=$(cut -d' ' -f1 /proc/uptime)"
