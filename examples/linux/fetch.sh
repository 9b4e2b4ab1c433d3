#!/usr/bin/env bash
# Fetch Debian 13 (trixie)'s riscv64 Linux kernel and busybox, and build the initramfs images of the two
# machines in examples/linux.
#
# Usage: examples/linux/fetch.sh [OUTDIR]
#   default OUTDIR: build/examples/linux in the source tree (where `plexus run linux` looks for the kernel and
#   initramfs its machine file names), ./plexus-linux elsewhere (an installed copy of this script)
#
# Writes OUTDIR/Image (the kernel), OUTDIR/initramfs.cpio.gz (a shell in RAM, machine.yaml),
# OUTDIR/initramfs-virtio.cpio.gz (loads the virtio and ext4 modules and switches to the root file system on
# /dev/vda, machine-virtio.yaml), OUTDIR/busybox (the static riscv64 busybox mkrootfs.sh puts on that disk) and
# OUTDIR/versions, then prints the commands that boot them. A complete OUTDIR is left as it is (delete it to
# fetch again).
#
# apt runs with a private state in a temporary folder (its own sources file, lists, cache, status
# /dev/null, architecture riscv64): the system's apt configuration, architectures and installed packages are
# not touched, and root is not needed. The mirror is the one the system's apt sources use
# (PLEXUS_DEBIAN_MIRROR overrides it). apt checks the archive's signature with the system's
# debian-archive-keyring and every package against the signed indexes.
#
# Nothing half-written: everything is built in OUTDIR.tmp.* and renamed into OUTDIR at the end (versions last,
# so an interrupted run leaves OUTDIR incomplete and the next run fetches again); other files in OUTDIR stay.
set -euo pipefail

suite=trixie
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
trixie_key=/usr/share/keyrings/debian-archive-trixie-stable.gpg
marker="plexus-linux: init ready"

die() { echo "fetch.sh: $*" >&2; exit 1; }

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
if [ -f "$root/CMakeLists.txt" ] && [ -d "$root/hub" ]; then
  out=${1:-$root/build/examples/linux}
else
  out=${1:-$PWD/plexus-linux}
fi
case $out in
  -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
  -*) die "unknown option '$out' (usage: fetch.sh [OUTDIR])" ;;
esac
out=$(realpath -m "$out")

print_command() {
  echo "Boot it (Ctrl-A x quits; 'poweroff' in the guest ends the run):"
  if [ "$out" = "$root/build/examples/linux" ]; then
    echo "  build/bin/plexus run linux"
    echo "With the root file system on a virtio disk (mkrootfs.sh writes $out/rootfs.ext4):"
    echo "  examples/linux/mkrootfs.sh"
    echo "  build/bin/plexus run examples/linux/machine-virtio.yaml"
  else
    echo "  plexus run linux --kernel $out/Image --initrd $out/initramfs.cpio.gz"
    echo "With the root file system on a virtio disk (mkrootfs.sh writes the image):"
    echo "  $here/mkrootfs.sh $out $out/rootfs.ext4"
    echo "  PLEXUS_PATH=$out plexus run $here/machine-virtio.yaml --kernel $out/Image" \
         "--initrd $out/initramfs-virtio.cpio.gz"
  fi
}

if [ -s "$out/Image" ] && [ -s "$out/initramfs.cpio.gz" ] && [ -s "$out/initramfs-virtio.cpio.gz" ] &&
   [ -s "$out/busybox" ] && [ -s "$out/versions" ]; then
  echo "fetch.sh: $out already holds $(tr '\n' ' ' < "$out/versions")(delete it to fetch again)"
  print_command
  exit 0
fi

missing=()
for t in apt-get apt-cache dpkg-deb cpio gzip xz awk find realpath; do
  command -v "$t" >/dev/null || missing+=("$t")
done
[ ${#missing[@]} -eq 0 ] || die "missing tools: ${missing[*]} (on Debian: apt-get install apt dpkg cpio gzip xz-utils)"
[ -r "$keyring" ] || die "no $keyring: install the debian-archive-keyring package"
[ -r "$trixie_key" ] ||
  die "the installed debian-archive-keyring does not hold Debian 13 (trixie)'s keys ($trixie_key is missing):" \
      "install debian-archive-keyring 2023.3+deb12u1 or later, or the archive's signature cannot be checked"

# The mirror the system already uses for Debian (not its security archive), from its own apt sources.
mirror_from_sources() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -r "$f" ] || continue
    # deb822 stanzas: the URIs of a "Types: deb" stanza whose suites are not security ones
    awk 'BEGIN { RS = ""; FS = "\n" }
         { types = uris = suites = ""
           for (i = 1; i <= NF; i++) {
             if ($i ~ /^Types:/) types = $i
             if ($i ~ /^URIs:/) uris = $i
             if ($i ~ /^Suites:/) suites = $i
             if ($i ~ /^Enabled: *no/) types = ""
           }
           if (types ~ /[ \t]deb([ \t]|$)/ && uris != "" && suites !~ /security/) {
             sub(/^URIs:[ \t]*/, "", uris); split(uris, u, /[ \t]+/); print u[1]; exit
           } }' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -r "$f" ] || continue
    # one-line form: deb [options] URI SUITE COMPONENTS...
    awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                       if ($(i + 1) !~ /security/) { print $i; exit } }' "$f"
  done
}
mirror=${PLEXUS_DEBIAN_MIRROR:-$(mirror_from_sources | head -n 1)}
[ -n "$mirror" ] ||
  die "no Debian mirror found in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list" \
      "(set PLEXUS_DEBIAN_MIRROR, e.g. to the URL your apt sources use for Debian)"
mirror=${mirror%/}

mkdir -p "$(dirname "$out")"
tmp=$(mktemp -d "$out.tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
apt_dir=$tmp/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$apt_dir/sources.list.d" \
         "$apt_dir/preferences.d" "$tmp/debs"
echo "deb [arch=riscv64 signed-by=$keyring] $mirror $suite main" > "$apt_dir/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
  -o "Dir::Etc::Preferences=$apt_dir/preferences" -o "Dir::Etc::PreferencesParts=$apt_dir/preferences.d"
  -o "Dir::State=$apt_dir" -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::State::status=/dev/null"
  -o "Dir::State::extended_states=$apt_dir/extended_states" -o "Dir::Cache=$apt_dir/cache"
  -o APT::Architecture=riscv64 -o APT::Architectures::=riscv64 -o Acquire::Languages=none
  -o APT::Get::List-Cleanup=false -q
)
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
  # apt downloads as its unprivileged _apt user: let it write where the packages go
  chmod 755 "$tmp"
  chown _apt "$tmp/debs" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
fi

echo "fetch.sh: reading Debian $suite's riscv64 package lists from $mirror"
if ! apt-get "${apt_opts[@]}" update > "$tmp/update.log" 2>&1; then
  cat "$tmp/update.log" >&2
  die "cannot read Debian $suite's package lists from $mirror (no network, or the mirror has no $suite?)"
fi
if grep -qE '^(W|E):' "$tmp/update.log"; then
  cat "$tmp/update.log" >&2
  die "apt reported problems reading $mirror $suite (above); nothing was written"
fi

# linux-image-riscv64 is a metapackage: the kernel is in the versioned package it depends on.
image_pkg=$(apt-cache "${apt_opts[@]}" depends linux-image-riscv64 2>/dev/null |
            awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }')
[ -n "$image_pkg" ] || die "linux-image-riscv64 in $mirror $suite depends on no linux-image-VERSION package"

echo "fetch.sh: downloading linux-image-riscv64, $image_pkg and busybox-static (riscv64)"
if ! (cd "$tmp/debs" && apt-get "${apt_opts[@]}" download linux-image-riscv64 "$image_pkg" busybox-static) \
     > "$tmp/download.log" 2>&1; then
  cat "$tmp/download.log" >&2
  die "download failed; nothing was written"
fi

kver=$(apt-cache "${apt_opts[@]}" show "$image_pkg" | awk '$1 == "Version:" { print $2; exit }')
bver=$(apt-cache "${apt_opts[@]}" show busybox-static | awk '$1 == "Version:" { print $2; exit }')

# The kernel: Debian installs the riscv64 Image as /boot/vmlinu[xz]-VERSION.
dpkg-deb -x "$tmp/debs/${image_pkg}_"*.deb "$tmp/kernel"
kernel=$(find "$tmp/kernel/boot" -maxdepth 1 -type f -name 'vmlinu*' | head -n 1)
[ -n "$kernel" ] || die "$image_pkg holds no /boot/vmlinu* kernel"
if [ "$(head -c 2 "$kernel" | od -An -tx1 | tr -d ' ')" = "1f8b" ]; then
  gzip -dc "$kernel" > "$tmp/Image"
else
  cp "$kernel" "$tmp/Image"
fi
# RISC-V Image header: magic2 "RSC\x05" at 56
[ "$(dd if="$tmp/Image" bs=1 skip=56 count=4 2>/dev/null | od -An -tx1 | tr -d ' ')" = "52534305" ] ||
  die "$kernel is not a RISC-V Linux Image (no RSC\\x05 magic at offset 56)"

# The initramfs: static busybox, an /init that mounts proc/sys/dev and prints the marker, then busybox init
# (so `poweroff` in the shell goes through init to the kernel and the firmware's poweroff device).
dpkg-deb -x "$tmp/debs/busybox-static_"*.deb "$tmp/busybox"
ir=$tmp/initramfs
mkdir -p "$ir/bin" "$ir/sbin" "$ir/usr/bin" "$ir/usr/sbin" "$ir/etc" "$ir/proc" "$ir/sys" "$ir/dev" \
         "$ir/tmp" "$ir/root"
bb=$(find "$tmp/busybox" -type f -name busybox -perm -u+x | head -n 1)
[ -n "$bb" ] || die "busybox-static holds no busybox executable"
install -m 755 "$bb" "$ir/bin/busybox"
cat > "$ir/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo "$marker"
exec /sbin/init
EOF
chmod 755 "$ir/init"
cat > "$ir/etc/inittab" <<'EOF'
# busybox init: a shell on the console (again when it exits); `poweroff` and `reboot` go through init.
::respawn:/bin/cttyhack /bin/sh
::shutdown:/bin/sync
EOF
cat > "$ir/etc/profile" <<'EOF'
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
EOF
(cd "$ir" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -9 > "$tmp/initramfs.cpio.gz"

# The virtio machine's initramfs: the same busybox, plus the kernel modules that reach a root file system on a
# virtio-mmio disk (Debian builds them as xz-compressed modules; busybox insmod takes them decompressed, each
# after the modules its .modinfo says it depends on). crc32c_generic comes first: jbd2 and ext4 ask for the
# crc32c algorithm (a soft dependency, which .modinfo does not list in depends=).
moddir=$(find "$tmp/kernel" -type d -path '*/lib/modules/*' -name kernel | head -n 1)
[ -n "$moddir" ] || die "$image_pkg holds no lib/modules/VERSION/kernel folder"
modinfo_field() {  # MODULE.ko.xz FIELD: the field's value from the module's .modinfo strings
  xz -dc "$1" | tr '\0' '\n' | awk -v f="$2=" 'index($0, f) == 1 { print substr($0, length(f) + 1); exit }'
}
module_file() {  # NAME: its .ko.xz (module names write - and _ alike)
  local n=${1//-/_} alt=${1//_/-}
  find "$moddir" \( -name "$n.ko.xz" -o -name "$alt.ko.xz" \) | head -n 1
}
mods=()
add_module() {  # NAME: its dependencies, then itself, once
  local m=${1//-/_} f d
  for d in "${mods[@]}"; do [ "$d" = "$m" ] && return 0; done
  f=$(module_file "$m")
  [ -n "$f" ] || die "the kernel has no module $m (looked for $m.ko.xz under $moddir)"
  for d in $(modinfo_field "$f" depends | tr ',' ' '); do add_module "$d"; done
  mods+=("$m")
}
for m in crc32c_generic virtio_mmio virtio_blk virtio_rng ext4; do add_module "$m"; done
irv=$tmp/initramfs-virtio
cp -a "$ir" "$irv"
mkdir -p "$irv/lib/modules" "$irv/newroot"
for m in "${mods[@]}"; do xz -dc "$(module_file "$m")" > "$irv/lib/modules/$m.ko"; done
printf '%s\n' "${mods[@]}" > "$irv/etc/modules"
cat > "$irv/init" <<'EOF'
#!/bin/busybox sh
# Load the virtio and ext4 modules, mount root= (default /dev/vda) and switch to it.
/bin/busybox --install -s
export PATH=/sbin:/bin:/usr/sbin:/usr/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/modules); do
  insmod "/lib/modules/$m.ko" || echo "plexus-linux: insmod $m failed"
done
root=/dev/vda
for a in $(cat /proc/cmdline); do
  case $a in root=*) root=${a#root=} ;; esac
done
i=0
while [ ! -b "$root" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
if ! mount -t ext4 "$root" /newroot; then
  echo "plexus-linux: cannot mount $root; here is a shell"
  exec sh
fi
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /sbin/init
EOF
chmod 755 "$irv/init"
(cd "$irv" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -9 > "$tmp/initramfs-virtio.cpio.gz"

printf '%s %s\nbusybox-static %s\nmirror %s\n' "$image_pkg" "$kver" "$bver" "$mirror" > "$tmp/versions"

# Only the results stay. Each appears by a rename, versions last: OUTDIR counts as complete only with it.
# Nothing else in OUTDIR is touched (it may be a folder of the build tree).
mkdir "$tmp/result"
install -m 755 "$bb" "$tmp/result/busybox"
mv "$tmp/Image" "$tmp/initramfs.cpio.gz" "$tmp/initramfs-virtio.cpio.gz" "$tmp/versions" "$tmp/result/"
mkdir -p "$out"
rm -f "$out/versions"
for f in Image initramfs.cpio.gz initramfs-virtio.cpio.gz busybox versions; do
  mv -f "$tmp/result/$f" "$out/$f"
done
echo "fetch.sh: wrote $out: Image ($image_pkg $kver), initramfs.cpio.gz and busybox (busybox-static $bver)," \
     "initramfs-virtio.cpio.gz (modules ${mods[*]})"
print_command
