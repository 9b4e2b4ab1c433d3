#!/usr/bin/env bash
# Build the device-message fuzzer (tests/fuzz) with clang and run it for a bounded time.
#   scripts/fuzz.sh [SECONDS]     (default 60)
# Build tree: $PLEXUS_FUZZ_BUILD or build-fuzz/ in the source tree. New inputs go to a scratch corpus; the seeds
# in tests/fuzz/corpus are read, not changed. A crash leaves crash-* in the build tree and exits non-zero.
set -euo pipefail
secs=${1:-60}
src=$(cd "$(dirname "$0")/.." && pwd)
build=${PLEXUS_FUZZ_BUILD:-$src/build-fuzz}
cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address -fno-omit-frame-pointer" >/dev/null
cmake --build "$build" -j2 --target plexus-fuzz-devmsg >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$build"
# -rss_limit_mb: the hub keeps at most a few MiB per device; -max_len: several frames of DMA data
"$build/bin/plexus-fuzz-devmsg" -max_total_time="$secs" -max_len=8192 -rss_limit_mb=2048 \
    -print_final_stats=1 "$work" "$src/tests/fuzz/corpus" 2>"$work/log" || { tail -50 "$work/log"; exit 1; }
grep -E "^(#[0-9]+.*DONE|stat::number_of_executed_units|stat::peak_rss_mb|stat::new_units_added)" "$work/log"
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
echo "fuzz: ${execs:-?} executions in ${secs} s, no crash"
