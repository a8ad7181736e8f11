#!/usr/bin/env bash
# Audit log benchmark: durable appends/s with 1, 16 and 64 concurrent writers
# (group commit) beside a one-fsync-per-record baseline on the same disk, in
# the same run; then verification time of a 1,000,000-record log.
#
# Goals (issue 4): >= 20,000 durable records/s at 64 writers, >= 10x the
# baseline, verify 1,000,000 records in < 3 s.
#
# Usage: bench/audit-bench.sh            (see bench/README.md)
# Knobs (environment): BUILD_DIR (build-release), BENCH_DIR (a new directory
# under /var/tmp: it must be on the disk you want to measure), SECONDS_PER_CASE
# (5), WRITERS (1,16,64), VERIFY_RECORDS (1000000; 0 skips), BUILD_WRITERS
# (256: writers used to build the verification log), KEEP_TMP (0).
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init audit-bench

SECONDS_PER_CASE=${SECONDS_PER_CASE:-5}
WRITERS=${WRITERS:-1,16,64}
VERIFY_RECORDS=${VERIFY_RECORDS:-1000000}
BUILD_WRITERS=${BUILD_WRITERS:-256}
KEEP_TMP=${KEEP_TMP:-0}


for v in SECONDS_PER_CASE BUILD_WRITERS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer (got '${!v}')"
done
[[ $VERIFY_RECORDS =~ ^[0-9]+$ ]] || bench_die "VERIFY_RECORDS must be a number"
[[ $WRITERS =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || bench_die "WRITERS must look like 1,16,64"

bench_build bench/audit-bench
bench_buildtype
BIN=$BUILD_DIR/bench/audit-bench
bench_tmpdir /var/tmp/odx-audit-bench.XXXXXX : "${BENCH_DIR-}"
BENCH_DIR=$TMP

bench_header
echo "audit-bench: disk: $(df -T "$BENCH_DIR" | awk 'NR==2 {print $1, $2}')"
"$BIN" --dir "$BENCH_DIR" --seconds "$SECONDS_PER_CASE" --writers "$WRITERS" \
    --verify-records "$VERIFY_RECORDS" --build-writers "$BUILD_WRITERS"
