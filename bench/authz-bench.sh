#!/usr/bin/env bash
# Authorization decision cost (issue 3): decisions/s with 0, 10 and 100
# permission-set rules, beside whole in-process requests as the peer.
#   bench/authz-bench.sh [seconds-per-case]
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init authz-bench
BUILD_DIR=build-release # not a knob here
scripts/setup
bench_build bench/authz-bench
"$BUILD_DIR/bench/authz-bench" "${1:-2}"
