#!/usr/bin/env bash
# Secrets engine benchmark (issue 7): seal/open operations per second and
# MB/s for 1 KiB and 64 KiB values, side by side in the same run with
# `openssl speed -evp aes-256-gcm` as the physical limit.
#
# Goal: >= 0.7x the raw cipher rate at 64 KiB.
#
# Usage: bench/secrets-bench.sh            (see bench/README.md)
# Knobs (environment): BUILD_DIR (build-release), KEEP_TMP (0), SECONDS_PER_CASE (3),
# THREADS (2: extra seal/open runs with that many threads, comma list; 0 skips).
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init secrets-bench

SECONDS_PER_CASE=${SECONDS_PER_CASE:-3}
THREADS=${THREADS:-2}


[[ $SECONDS_PER_CASE =~ ^[1-9][0-9]*$ ]] || bench_die "SECONDS_PER_CASE must be a positive integer"
[[ $THREADS =~ ^[0-9]+(,[0-9]+)*$ ]] || bench_die "THREADS must look like 2 or 2,4 (0 skips)"
command -v openssl >/dev/null || bench_die "openssl is needed (apt-get install openssl)"

bench_build bench/secrets-bench
bench_buildtype
bench_tmpdir "${TMPDIR:-/tmp}/odx-secrets-bench-sh.XXXXXX" :

bench_header
echo "secrets-bench: load average before: $(bench_loadavg)"

args=(--seconds "$SECONDS_PER_CASE" --results "$TMP/results")
[ "$THREADS" = 0 ] || args+=(--threads "$THREADS")
"$BUILD_DIR/bench/secrets-bench" "${args[@]}"

# openssl speed prints "The 'numbers' are in 1000s of bytes per second processed."
# then a header line and "AES-256-GCM  2065405.87k": the value, in kB/s (10^3).
openssl_mbs() {
    openssl speed -evp aes-256-gcm -bytes "$1" -seconds "$SECONDS_PER_CASE" 2>/dev/null |
        awk '/numbers.*1000s of bytes per second/ { t = 1; next }
             t && tolower($1) == "aes-256-gcm" { v = $NF; sub(/k$/, "", v); print v / 1000; exit }'
}
echo
echo "openssl speed -evp aes-256-gcm -seconds $SECONDS_PER_CASE ($(openssl version | cut -d' ' -f1-2); divides by user CPU time):"
declare -A OSSL
for n in 1024 65536; do
    OSSL[$n]=$(openssl_mbs "$n")
    [ -n "${OSSL[$n]}" ] || bench_die "could not read openssl speed's table for -bytes $n"
    printf '  -bytes %-5s %8.0f MB/s\n' "$n" "${OSSL[$n]}"
done

# results lines: case bytes threads ops/s MB/s MB/CPU-s CPU-ns/op core-share
get() { awk -v c="$1" -v n="$2" '$1 == c && $2 == n && $3 == 1 { print $6 }' "$TMP/results"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

echo
echo "| value | openssl speed MB/s | evp-speed (in process) | seal MB/CPU-s | seal ÷ openssl | open MB/CPU-s | open ÷ openssl |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for n in 1024 65536; do
    label=$([ "$n" = 1024 ] && echo "1 KiB" || echo "64 KiB")
    o=${OSSL[$n]} s=$(get seal "$n") p=$(get open "$n") e=$(get evp-speed "$n")
    printf '| %s | %.0f | %.0f (%s×) | %.0f | %s× | %.0f | %s× |\n' "$label" "$o" "$e" \
        "$(ratio "$e" "$o")" "$s" "$(ratio "$s" "$o")" "$p" "$(ratio "$p" "$o")"
done
o=${OSSL[65536]}
seal=$(ratio "$(get seal 65536)" "$o") open=$(ratio "$(get open 65536)" "$o")
verdict=$(awk -v s="$seal" -v p="$open" 'BEGIN { print (s >= 0.7 && p >= 0.7) ? "met" : "NOT met" }')
echo
echo "64 KiB: seal ${seal}×, open ${open}× the raw cipher (goal ≥ 0.7×) — $verdict"
echo "(rates per second of CPU time on both sides; open is compared with openssl's encryption rate)"
echo "secrets-bench: load average after: $(bench_loadavg)"
