#!/usr/bin/env bash
# Install every Debian package plexus needs to build, test and run its examples. Idempotent.
set -euo pipefail
pkgs=(
  build-essential cmake pkg-config file
  libzmq3-dev libprotobuf-c-dev protobuf-c-compiler libseccomp-dev libcriterion-dev
  libunicorn-dev libyaml-dev libfdt-dev libelf-dev liburcu-dev verilator libsystemc-dev
  gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf u-boot-qemu opensbi qemu-system-misc cpio xz-utils e2fsprogs
  clang libclang-rt-14-dev device-tree-compiler python3-zmq python3-protobuf protobuf-compiler
  gdb-multiarch libjson-c-dev acl
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "plexus: installing ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
