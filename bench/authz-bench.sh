#!/usr/bin/env bash
# Authorization decision cost (issue 3): decisions/s with 0, 10 and 100
# permission-set rules, beside whole in-process requests as the peer.
#   bench/authz-bench.sh [seconds-per-case]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup
[ -d build-release ] || meson setup build-release --buildtype=release >/dev/null
ninja -C build-release bench/authz-bench >/dev/null
build-release/bench/authz-bench "${1:-2}"
