#!/usr/bin/env bash
# Scanner benchmark (issue 8): parse + merge time and peak memory of a Trivy
# and a Grype report of one image, for the largest real pair in the test data
# (webgoat), juice-shop, and a synthetic pair of $SYNTH findings each, side by
# side in the same run with a straightforward Python peer (bench/scan-peer.py).
#
# Goal: 50,000 + 50,000 findings merged in under 1 s, with peak memory under
# 10x the input size. Printed as words; the exit status never depends on it.
#
# Usage: bench/scan-bench.sh            (see bench/README.md)
# Knobs (environment): BUILD_DIR (build-release), REPEAT (5: runs per case,
# median), SYNTH (50000: findings per engine in the synthetic pair), KEEP_TMP
# (0; 1 keeps the synthetic reports and the raw results).
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init scan-bench

REPEAT=${REPEAT:-5}
SYNTH=${SYNTH:-50000}
KEEP_TMP=${KEEP_TMP:-0}
DATA=tests/data/scanners/appsecsanta-research

[[ $REPEAT =~ ^[1-9][0-9]*$ ]] && [ "$REPEAT" -le 100 ] || bench_die "REPEAT must be 1..100"
[[ $SYNTH =~ ^[1-9][0-9]*$ ]] && [ "$SYNTH" -le 180000 ] || bench_die "SYNTH must be 1..180000"
command -v python3 >/dev/null || bench_die "python3 is needed for the peer"
[ -r /proc/self/clear_refs ] || bench_die "/proc/self/clear_refs is needed to reset the peak RSS"
for f in trivy-webgoat grype-webgoat trivy-juice-shop grype-juice-shop; do
    [ -r "$DATA/$f.json" ] || bench_die "missing $DATA/$f.json"
done

bench_build bench/scan-bench
bench_buildtype
bench_tmpdir "${TMPDIR:-/tmp}/odx-scan-bench.XXXXXX" :
BENCH=$BUILD_DIR/bench/scan-bench

bench_header "$(python3 --version), $REPEAT runs per case"
echo "scan-bench: load average before: $(bench_loadavg)"

start=$(date +%s)
"$BENCH" --generate "$TMP" --findings "$SYNTH"
echo "synthetic input: trivy.json $(stat -c %s "$TMP/trivy.json") B + grype.json $(stat -c %s "$TMP/grype.json") B (generated in $(($(date +%s) - start)) s)"
echo

cases=(webgoat "$DATA/trivy-webgoat.json" "$DATA/grype-webgoat.json"
       juice-shop "$DATA/trivy-juice-shop.json" "$DATA/grype-juice-shop.json"
       synthetic "$TMP/trivy.json" "$TMP/grype.json")
"$BENCH" --repeat "$REPEAT" --results "$TMP/results" "${cases[@]}"
for ((i = 0; i < ${#cases[@]}; i += 3)); do
    python3 bench/scan-peer.py --repeat "$REPEAT" "${cases[@]:i:3}" >>"$TMP/results"
done

# results lines: "ours|peer NAME key=value ..."
get() { awk -v s="$1" -v c="$2" -v k="$3" '$1 == s && $2 == c {
            for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] } }' "$TMP/results"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

echo
echo "ours = trivy_parse + grype_parse + scan_merge; peer = json.loads + findings + merge (scan-peer.py)"
echo "ms: median of $REPEAT runs; peak: VmHWM - VmRSS at start of a forked child doing read + parse + merge once"
echo
echo "| case | input MiB | ours ms | peer ms | peer/ours | our peak MiB | peak/input | peer peak MiB | peer peak/input | merged ours = both + T + G | merged peer = both + T + G |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for c in webgoat juice-shop synthetic; do
    in=$(get ours $c input) o=$(get ours $c total_ms) p=$(get peer $c total_ms)
    op=$(get ours $c peak) pp=$(get peer $c peak)
    printf '| %s | %s | %s | %s | %s× | %s | %s× | %s | %s× | %s = %s + %s + %s | %s = %s + %s + %s |\n' "$c" \
        "$(calc %.1f "$in / 1048576")" "$(calc %.1f "$o")" "$(calc %.1f "$p")" "$(calc %.2f "$p / $o")" \
        "$(calc %.1f "$op / 1048576")" "$(calc %.1f "$op / $in")" \
        "$(calc %.1f "$pp / 1048576")" "$(calc %.1f "$pp / $in")" \
        "$(get ours $c merged)" "$(get ours $c both)" "$(get ours $c only_t)" "$(get ours $c only_g)" \
        "$(get peer $c merged)" "$(get peer $c both)" "$(get peer $c only_t)" "$(get peer $c only_g)"
done
echo
echo "Merged counts differ in method (ours: union-find over ids with advisory ids kept apart, per"
echo "package key; the peer: first earlier finding sharing a (CVE-or-alias, PURL) key); not asserted."
echo
o=$(get ours synthetic total_ms) in=$(get ours synthetic input) op=$(get ours synthetic peak)
fast=$(calc %s "($o < 1000) ? \"yes\" : \"no\"")
small=$(calc %s "($op < 10 * $in) ? \"yes\" : \"no\"")
echo "goal, $SYNTH + $SYNTH findings: merged in $(calc %.0f "$o") ms — under 1 s: $fast;" \
    "peak $(calc %.0f "$op / 1048576") MiB = $(calc %.1f "$op / $in")× the input — under 10×: $small"
echo "scan-bench: load average after: $(bench_loadavg); took $(($(date +%s) - start)) s"
