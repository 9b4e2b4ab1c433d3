#!/usr/bin/env bash
# The Debian package, end to end: build it from build/ (cpack -G DEB), install it on this machine with dpkg -i
# (then apt-get -f install for missing dependencies), run the installed-product tests against it
# (tests/install with PLEXUS_TEST_PREFIX=/usr: hello, U-Boot to its prompt, the out-of-tree example,
# plexus new-device projects), purge it, and check that nothing it installed is left.
#
# It changes the system, so it needs root and is meant for throwaway machines (CI runs it from .ci/run). It
# refuses to run when a plexus package is already installed, and removes its own on every exit path.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
    echo "test-package: needs root: it installs and removes the plexus package" >&2
    exit 1
fi
if dpkg-query -W -f='${Status}' plexus 2>/dev/null | grep -q " installed$"; then
    echo "test-package: a plexus package is already installed; not touching it" >&2
    exit 1
fi
./scripts/deps.sh
./scripts/build.sh >/dev/null

work=$(mktemp -d)
installed=0
cleanup() {
    if [ "$installed" = 1 ]; then
        dpkg --purge plexus >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

(cd build && cpack -G DEB -B "$work" >"$work/cpack.log" 2>&1) || { cat "$work/cpack.log" >&2; exit 1; }
deb=$(echo "$work"/plexus_*.deb)
depends=$(dpkg-deb -f "$deb" Depends)
echo "test-package: $(basename "$deb"), Depends: $depends"
# Computed from the binaries: the hub's libraries, the SDK's and the SystemC bridge's are there.
for lib in libc6 libunicorn2 libzmq5 libprotobuf-c1 libseccomp2 libsystemc; do
    case ", $depends" in
    *", $lib "* | *", $lib,"* | *", $lib") ;;
    *) echo "test-package: Depends lacks $lib" >&2; exit 1 ;;
    esac
done

# Every path the package holds, and which of them (shared folders such as /usr/bin) exist before it.
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed -e 's|^\./|/|' -e 's|/$||' | grep -v '^$' >"$work/paths"
while read -r path; do
    if [ -e "$path" ] || [ -L "$path" ]; then echo "$path"; fi
done <"$work/paths" >"$work/before"

installed=1
dpkg -i "$deb" >"$work/dpkg.log" 2>&1 || true
DEBIAN_FRONTEND=noninteractive apt-get -f install -y -qq >>"$work/dpkg.log" 2>&1
if ! dpkg-query -W -f='${Status}\n' plexus | grep -qx "install ok installed"; then
    cat "$work/dpkg.log" >&2
    echo "test-package: the package did not install" >&2
    exit 1
fi

PLEXUS_BUILD_DIR=$PWD/build PLEXUS_SOURCE_DIR=$PWD PLEXUS_TEST_PREFIX=/usr \
    build/bin/test-installed --jobs 1 --filter 'installed/*'

dpkg --purge plexus >"$work/dpkg.log" 2>&1 || { cat "$work/dpkg.log" >&2; exit 1; }
installed=0

# Nothing it installed is left: no path that was not there before, no loader cache entry, no dpkg record.
left=0
while read -r path; do
    if { [ -e "$path" ] || [ -L "$path" ]; } && ! grep -qxF "$path" "$work/before"; then
        echo "test-package: left behind: $path" >&2
        left=1
    fi
done <"$work/paths"
if ldconfig -p | grep -q libplexus-sdk; then
    echo "test-package: libplexus-sdk is still in the loader's cache" >&2
    left=1
fi
if dpkg-query -W -f='${Status}' plexus 2>/dev/null | grep -qv "not-installed"; then
    echo "test-package: dpkg still knows plexus: $(dpkg-query -W -f='${Status}' plexus)" >&2
    left=1
fi
[ "$left" = 0 ]
echo "test-package: installed, tested and purged $(wc -l <"$work/paths") paths; nothing left"
