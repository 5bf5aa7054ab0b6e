#!/bin/busybox sh
# PID 1 of the thinlayer test VM. Loads the modules, mounts the host's root read-only over 9p,
# gives it fresh /dev, /proc, /sys, /run and /tmp, mounts the persistent disk at /run/tl-disk,
# runs the command file named on the kernel command line inside a chroot of the host root
# (so the guest uses the host's node, node_modules, libdevmapper and filesystem tools), then
# reports the exit status on the console for the host to parse and powers off.

/bin/busybox mkdir -p /proc /sys /dev /mnt /sbin /usr/bin /usr/sbin
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin

say() { echo "TL-VM: $*"; }
fail() {
  echo "TL-VM-FAIL $*"
  sync
  poweroff -f
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }
param() {
  for word in $(cat /proc/cmdline); do
    case "$word" in "$1="*) echo "${word#*=}" ;; esac
  done
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

while read -r module; do
  insmod "/modules/$module" || fail "insmod $module"
done </modules/order

ROOT=/mnt
# cache=loose: the share is read-only and nothing changes it during a boot, and loose caching
# makes node's many small module reads several times faster.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose host "$ROOT" || fail "mount 9p host root"
mount -t devtmpfs devtmpfs "$ROOT/dev" || fail "mount dev"
mkdir -p "$ROOT/dev/shm" "$ROOT/dev/pts"
mount -t tmpfs tmpfs "$ROOT/dev/shm"
mount -t devpts devpts "$ROOT/dev/pts"
mount -t proc proc "$ROOT/proc" || fail "mount proc"
mount -t sysfs sysfs "$ROOT/sys" || fail "mount sys"
CMD=$(param tl.cmd)
CWD=$(param tl.cwd)
# A checkout under /tmp or /run (a CI clone, say) would be hidden by the guest's fresh tmpfs there:
# hold it aside with a bind mount and put it back at the same path on the new tmpfs.
case "$CWD" in
  /tmp/*|/run/*) mkdir -p /keep && mount -o bind "$ROOT$CWD" /keep || fail "hold the checkout $CWD aside" ;;
esac
mount -t tmpfs -o mode=755 tmpfs "$ROOT/run" || fail "mount run"
mount -t tmpfs -o mode=1777 tmpfs "$ROOT/tmp" || fail "mount tmp"
case "$CWD" in
  /tmp/*|/run/*) mkdir -p "$ROOT$CWD" && mount -o bind /keep "$ROOT$CWD" || fail "put the checkout back at $CWD" ;;
esac

# The persistent disk: formatted on first use only. A disk that has a filesystem but does not
# mount is a failure, never a reason to reformat (that would hide the very corruption the
# power-cut scenarios look for).
DISK="$ROOT/run/tl-disk"
mkdir -p "$DISK"
if [ -n "$(chroot "$ROOT" /sbin/blkid -p -o value -s TYPE /dev/vda)" ]; then
  mount -t ext4 /dev/vda "$DISK" || fail "mount /dev/vda (it has a filesystem but does not mount)"
else
  say "formatting the empty disk /dev/vda"
  chroot "$ROOT" /sbin/mkfs.ext4 -q -F /dev/vda || fail "mkfs.ext4 /dev/vda"
  mount -t ext4 /dev/vda "$DISK" || fail "mount /dev/vda after mkfs"
fi

[ -n "$CMD" ] && [ -f "$ROOT$CMD" ] || fail "no command file '$CMD' in the shared root"
say "ready at $(uptime_s)s"
chroot "$ROOT" /usr/bin/env -i \
  HOME=/tmp TMPDIR=/tmp TERM=dumb LANG=C.UTF-8 TL_VM=1 CI=1 \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  /bin/sh -c 'cd "$1" && exec /bin/sh "$2"' sh "$CWD" "$CMD" </dev/null
rc=$?
say "command ended at $(uptime_s)s"
echo "TL-VM-EXIT $rc"
sync
sync
poweroff -f
