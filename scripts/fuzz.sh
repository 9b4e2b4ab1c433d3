#!/usr/bin/env bash
# Build the fuzzers (tests/fuzz: device messages, the ring, the virtqueues, the GDB stub) with clang and run them
# for a bounded time.
#   scripts/fuzz.sh [SECONDS]     (default 60)
# Build tree: $PLEXUS_FUZZ_BUILD or build-fuzz/ in the source tree. New inputs go to a scratch corpus; the seeds
# in tests/fuzz/corpus, corpus-ring, corpus-virtq and corpus-gdb are read, not changed. A crash leaves crash-* in
# the build tree and exits non-zero.
set -euo pipefail
secs=${1:-60}
src=$(cd "$(dirname "$0")/.." && pwd)
build=${PLEXUS_FUZZ_BUILD:-$src/build-fuzz}
cmake -S "$src" -B "$build" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link,address -fno-omit-frame-pointer" >/dev/null
cmake --build "$build" -j2 --target plexus-fuzz-devmsg plexus-fuzz-ring plexus-fuzz-virtq plexus-fuzz-gdb >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$build"
# Four targets share the time: device messages (two fifths), the ring's memory, the virtqueues and the GDB stub
# (a fifth each).

# -rss_limit_mb: the hub keeps at most a few MiB per device; -max_len: several frames of DMA data / a ring
run() {
    local name=$1 t=$2 corpus=$3
    mkdir -p "$work/$name"
    "$build/bin/$name" -max_total_time="$t" -max_len=8192 -rss_limit_mb=2048 -print_final_stats=1 \
        "$work/$name" "$corpus" 2>"$work/$name.log" || { tail -50 "$work/$name.log"; exit 1; }
    grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|stat::new_units_added)" "$work/$name.log"
    local execs
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$name.log")
    echo "fuzz: $name: ${execs:-?} executions in ${t} s, no crash"
}
run plexus-fuzz-devmsg $(( secs * 2 / 5 > 1 ? secs * 2 / 5 : 1 )) "$src/tests/fuzz/corpus"
run plexus-fuzz-ring $(( secs / 5 > 1 ? secs / 5 : 1 )) "$src/tests/fuzz/corpus-ring"
run plexus-fuzz-virtq $(( secs / 5 > 1 ? secs / 5 : 1 )) "$src/tests/fuzz/corpus-virtq"
run plexus-fuzz-gdb $(( secs / 5 > 1 ? secs / 5 : 1 )) "$src/tests/fuzz/corpus-gdb"
