#!/usr/bin/env bash
# Build the ext4 root file system of examples/linux/machine-virtio.yaml: fetch.sh's static busybox, an init
# that mounts proc, sys and a tmpfs and prints a marker, and a shell on the console. mke2fs -d writes the files
# straight into the image (Debian's e2fsprogs; no root, no loop device).
#
# Usage: examples/linux/mkrootfs.sh [FETCHDIR [IMAGE [SIZE]]]      (SIZE as mke2fs takes it, default 64M)
#
# FETCHDIR is what examples/linux/fetch.sh wrote (it holds busybox; default: fetch.sh's default folder in the
# source tree, build/examples/linux). IMAGE (default FETCHDIR/rootfs.ext4) is replaced.
set -euo pipefail
die() { echo "mkrootfs.sh: $*" >&2; exit 1; }

case ${1:-} in -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;; esac
[ $# -le 3 ] || die "usage: mkrootfs.sh [FETCHDIR [IMAGE [SIZE]]]"
root=$(cd "$(dirname "$0")/../.." && pwd)
if [ $# -eq 0 ]; then
  [ -f "$root/CMakeLists.txt" ] && [ -d "$root/hub" ] ||
    die "usage: mkrootfs.sh FETCHDIR [IMAGE [SIZE]] (outside the source tree FETCHDIR has no default)"
  set -- "$root/build/examples/linux"
fi
src=$1 image=${2:-$1/rootfs.ext4} size=${3:-64M}
[ -x "$src/busybox" ] || die "$src/busybox is missing: run examples/linux/fetch.sh $src first"
command -v mke2fs >/dev/null || die "mke2fs not found (on Debian: apt-get install e2fsprogs)"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
r=$tmp/root
mkdir -p "$r/bin" "$r/sbin" "$r/usr/bin" "$r/usr/sbin" "$r/etc/init.d" "$r/dev" "$r/proc" "$r/sys" "$r/tmp" \
         "$r/root" "$r/mnt"
install -m 755 "$src/busybox" "$r/bin/busybox"
ln -s busybox "$r/bin/sh"
ln -s ../bin/busybox "$r/sbin/init"
cat > "$r/etc/inittab" <<'EOF'
# busybox init on the disk: set up, then a shell on the console (again when it exits). At poweroff the file
# systems are synced and the root is remounted read-only, so the disk is clean when the machine stops.
::sysinit:/etc/init.d/rcS
::respawn:/bin/cttyhack /bin/sh
::shutdown:/bin/sync
::shutdown:/bin/umount -a -r
EOF
cat > "$r/etc/init.d/rcS" <<'EOF'
#!/bin/sh
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t tmpfs tmpfs /tmp
echo "plexus-linux: root file system $(awk '$2 == "/" { print $1 " (" $3 ")" }' /proc/mounts) ready"
EOF
chmod 755 "$r/etc/init.d/rcS"
cat > "$r/etc/profile" <<'EOF'
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
EOF

rm -f "$image"
mke2fs -q -t ext4 -b 4096 -L plexus-root -E root_owner=0:0 -d "$r" "$image" "$size" >/dev/null ||
  die "mke2fs could not write $image"
echo "mkrootfs.sh: wrote $image ($size, ext4)"
