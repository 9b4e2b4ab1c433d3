#!/usr/bin/env bash
# The suites about device processes and their jail, run by an unprivileged user twice: as the kernel offers
# (devices jailed in a user namespace), then with user namespaces refused (a user namespace of this run's own
# whose user.max_user_namespaces is 0, holding no capability: devices get Landlock and seccomp only). Run after
# scripts/test.sh has built ${BUILD_DIR:-build}. As root it runs them as the system user plexus-test (made if
# missing, and given search access to the tree's parent folders); otherwise as the user running it.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$(pwd)
BUILD=$(realpath "${BUILD_DIR:-build}")
TESTS=(test-confine test-hub-dev test_machine_e2e)

as=()
if [ "$(id -u)" = 0 ]; then
  id -u plexus-test >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin plexus-test
  as=(setpriv --reuid="$(id -u plexus-test)" --regid="$(id -g plexus-test)" --clear-groups)
  # the tree may sit under a folder only root can enter (/root): let the user through, and nothing more
  d=$SRC
  while [ "$d" != / ]; do
    "${as[@]}" test -x "$d" || setfacl -m u:plexus-test:x "$d"
    d=$(dirname "$d")
  done
fi
envs=(env -i PATH=/usr/bin:/bin HOME=/tmp PLEXUS_BUILD_DIR="$BUILD" PLEXUS_SOURCE_DIR="$SRC")

status=0
for mode in userns no-userns; do
  for t in "${TESTS[@]}"; do
    echo "== $t, unprivileged, $mode"
    if [ $mode = userns ]; then
      (cd /tmp && "${as[@]}" "${envs[@]}" "$BUILD/bin/$t" --jobs 1) || status=1
    else
      (cd /tmp && "${as[@]}" unshare --user --map-root-user sh -c \
        'echo 0 > /proc/sys/user/max_user_namespaces && exec setpriv --bounding-set=-all --inh-caps=-all "$@"' \
        sh "${envs[@]}" "$BUILD/bin/$t" --jobs 1) || status=1
    fi
  done
done
exit $status
