#!/usr/bin/env bash
# Set up, build and run the whole test suite. With --sanitize: the same under ASan+UBSan in build-asan/.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
if [ "${1:-}" = "--sanitize" ]; then
  BUILD_DIR=build-asan ./scripts/build.sh -DPLEXUS_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
  export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  ctest --test-dir build-asan --output-on-failure -j2
else
  ./scripts/build.sh
  ctest --test-dir build --output-on-failure -j2
fi
