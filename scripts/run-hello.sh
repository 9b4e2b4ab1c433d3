#!/usr/bin/env bash
# Set up, build, and boot the default example machine (examples/hello): firmware on the hub's RISC-V CPU
# printing through an out-of-process 16550 UART and copying memory with an out-of-process DMA engine.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
./scripts/build.sh
exec ./build/bin/plexus run examples/hello/machine.yaml "$@"
