#!/bin/bash
# In the VM: a root size per container through containerd (the root-size scenario). For each of ext4
# and xfs, a pool of its own and `thinlayer snapshotter` on it, Debian's containerd with the proxy
# plugin `thinlayer`, the image imported, then:
#   - `ctr run --snapshotter-label containerd.io/snapshot/thinlayer.size=640M`: `df -k /` in the
#     container, and a file of the image read;
#   - `ctr run` without the label: the root keeps the base's size;
#   - a label that is not a size: ctr fails with the snapshotter's InvalidArgument (ext4 only);
# then everything removed, the snapshotter stopped (status 0) and doctor asked for leaked thin ids.
#
#   guest-root-size.sh IMAGE_TAR IMAGE_NAME
#
# Results are `TL-CTD KEY=VALUE` lines for the host; a failed step prints TL-CTD-FAIL.
set -u
cd "$(dirname "$0")/../.."
. test/containerd/guest-lib.sh
IMAGE_TAR=$1 IMAGE=$2
LABEL=containerd.io/snapshot/thinlayer.size
SNAP=(--snapshotter thinlayer)

# df_root NAME [LABEL=VALUE]: `ctr run --rm` printing the root's size in KiB and the image's message.
df_root() {
  local name=$1 t0
  shift
  t0=$(now_ms)
  ctr run --rm "${SNAP[@]}" "$@" "$IMAGE" "$name" sh -c 'busybox df -k / | busybox tail -n 1; cat /etc/tl-message' >"/tmp/$name.out" 2>"/tmp/$name.err" ||
    { cat "/tmp/$name.err"; ctd_fail "ctr run $name"; return 1; }
  ctd_say "$name-ms=$(($(now_ms) - t0))"
  # busybox df: Filesystem 1K-blocks Used Available Use% Mounted-on
  ctd_say "$name-kib=$(head -n 1 "/tmp/$name.out" | awk '{print $2}')"
  ctd_say "$name-message=$(tail -n 1 "/tmp/$name.out")"
}

for FS in ext4 xfs; do
  DIR=/run/tl-disk/root-size-$FS
  STATE=$DIR/state
  BASE=256M
  [ "$FS" = xfs ] && BASE=320M
  rm -rf "$DIR"
  mkdir -p "$DIR"
  printf 'version: 1\npool:\n  name: rs%s\n  data: { file: data.img, size: 4G }\n  metadata: { file: metadata.img, size: 128M }\n  baseSize: %s\n  filesystem: %s\n' "$FS" "$BASE" "$FS" >"$DIR/snapshotter.yaml"
  snap_start "$STATE" "$DIR/snapshotter.yaml" || exit 1
  ctd_config "$DIR/containerd" ""
  ctd_start || exit 1
  ctr images import "${SNAP[@]}" "$IMAGE_TAR" >/tmp/import.out 2>&1 || { cat /tmp/import.out; ctd_fail "ctr images import ($FS)"; exit 1; }
  df_root "$FS-sized" --snapshotter-label "$LABEL=640M" || exit 1
  df_root "$FS-plain" || exit 1
  if [ "$FS" = ext4 ]; then
    if ctr run --rm "${SNAP[@]}" --snapshotter-label "$LABEL=lots" "$IMAGE" bad true >/tmp/bad.out 2>&1; then
      ctd_say "bad-label=accepted"
    else
      ctd_say "bad-label=$(grep -o "label $LABEL=[^:]*: [^\"]*" /tmp/bad.out | head -n 1)"
    fi
  fi
  ctr images rm --sync "$IMAGE" >/dev/null
  for i in $(seq 1 100); do
    n=$(ctr snapshots "${SNAP[@]}" ls | tail -n +2 | wc -l)
    [ "$n" = 0 ] && break
    sleep 0.3
  done
  ctd_say "$FS-snapshots-left=$n"
  ctd_stop TERM
  snap_stop TERM || exit 1
  ctd_say "$FS-snapshotter-exit=$SNAP_STATUS"
  echo "TL-CTD $FS-doctor=$($TL_CLI doctor --json --backend kernel --state-dir "$STATE" 2>/tmp/doctor.err | tr -d '\n')"
done
ctd_say "done=1"
