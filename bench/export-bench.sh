#!/usr/bin/env bash
# Audit export benchmark (issue 4: "GET /v1/audit/export?format=csv|json
# streams with the same filters (constant memory for any size)").
#
# For each log size (10,000 and 1,000,000 records by default): a fresh data
# dir, `odysseusd init`, bench/export-fill appends N platform records
# (tenant "") straight into audit.db, then `odysseusd serve` and the platform
# administrator downloads GET /v1/audit/export?format=json and ?format=csv
# with curl while odysseusd's VmRSS is sampled every SAMPLE_MS ms (and its
# exact peak read from VmHWM, reset before each export through
# /proc/PID/clear_refs). On the largest log a slow reader (curl
# --limit-rate) holds the stream open for SLOW_SECONDS while /readyz is timed
# (the event loop must keep answering), then goes away.
#
# The peer, in the same run on the same file: the sqlite3 shell writing the
# same columns (hashes as hex, the same tenant filter) as JSON (-json) and
# CSV (-csv -header), with /usr/bin/time's maximum RSS. Ratios, never
# pass/fail timings; the key line is odysseusd's peak RSS growth from the
# smallest to the largest log (constant memory means small).
#
# Usage: bench/export-bench.sh            (see bench/README.md)
# Knobs (environment): BUILD_DIR (build-release), SIZES (10000,1000000),
# MODES (plain,tls), SERVER_THREADS (2), SLOW_RATE (2M), SLOW_SECONDS (5),
# SAMPLE_MS (50), FILL_WRITERS (256), BENCH_DIR (a new dir under /var/tmp:
# audit.db lives there), LOG_LEVEL (warn), KEEP_TMP (0).
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init export-bench

SIZES=${SIZES:-10000,1000000}
MODES=${MODES:-plain,tls}
SERVER_THREADS=${SERVER_THREADS:-2}
SLOW_RATE=${SLOW_RATE:-2M}
SLOW_SECONDS=${SLOW_SECONDS:-5}
SAMPLE_MS=${SAMPLE_MS:-50}
FILL_WRITERS=${FILL_WRITERS:-256}
LOG_LEVEL=${LOG_LEVEL:-warn}
KEEP_TMP=${KEEP_TMP:-0}

# The daemon reads these too and they would override what we mean below.
unset ODYSSEUS_DATA_DIR ODYSSEUS_LISTEN ODYSSEUS_THREADS ODYSSEUS_PLAIN_HTTP ODYSSEUS_AUDIT_DIR

ADMIN_EMAIL=bench@x.test
ADMIN_PASSWORD="export-bench-password-1"

[[ $SIZES =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || bench_die "SIZES must look like 10000,1000000"
[[ $MODES =~ ^(plain|tls)(,(plain|tls))*$ ]] || bench_die "MODES must look like plain,tls"
for v in SERVER_THREADS SLOW_SECONDS SAMPLE_MS FILL_WRITERS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer (got '${!v}')"
done
[[ $SLOW_RATE =~ ^[1-9][0-9]*[KkMmGg]?$ ]] || bench_die "SLOW_RATE must look like 2M"
IFS=, read -ra SIZE_LIST <<<"$SIZES"
IFS=, read -ra MODE_LIST <<<"$MODES"
LARGEST=0
for n in "${SIZE_LIST[@]}"; do ((n > LARGEST)) && LARGEST=$n; done

# --- tools -------------------------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1; }
missing=()
have curl || missing+=(curl)
have jq || missing+=(jq)
have sqlite3 || missing+=(sqlite3)
[[ -x /usr/bin/time ]] || missing+=(time)
if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || bench_die "missing packages: ${missing[*]} (install them or run as root)"
    bench_note "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- build -------------------------------------------------------------------
bench_build odysseusd bench/export-fill
ODYSSEUSD=$(cd "$BUILD_DIR" && pwd)/odysseusd
FILL=$(cd "$BUILD_DIR" && pwd)/bench/export-fill
bench_buildtype

# --- temp dir and cleanup ----------------------------------------------------
DAEMON_PID=
SAMPLER_PID=
SLOW_PID=
ODD=() # anything odd about odysseusd, printed at the end

stop_bg() { # stop_bg PID: one background job of ours
    [[ -n $1 ]] || return 0
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

stop_daemon() {
    [[ -n $DAEMON_PID ]] || return 0
    local pid=$DAEMON_PID rc=0 i
    DAEMON_PID=
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        ODD+=("odysseusd ($pid) ignored SIGTERM for 30 s: SIGKILL")
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || rc=$?
    ((rc == 0)) || ODD+=("odysseusd exited with status $rc after SIGTERM (expected 0)")
}

stop_all() {
    stop_bg "$SLOW_PID"
    stop_bg "$SAMPLER_PID"
    stop_daemon
}
bench_tmpdir /var/tmp/odx-export-bench.XXXXXX stop_all "${BENCH_DIR-}"

# --- helpers -----------------------------------------------------------------
now() { date +%s.%N; }
fmt() { awk -v x="$2" "BEGIN { printf \"$1\", x }"; } # fmt PRINTF-FORMAT NUMBER
mib() { fmt '%.1f' "$(awk -v k="$1" 'BEGIN { print k / 1024 }')"; }

# status_kb PID FIELD: VmRSS / VmHWM in KiB, without forking.
status_kb() {
    local k v _
    while read -r k v _; do
        [[ $k == "$2:" ]] && { echo "$v"; return 0; }
    done <"/proc/$1/status"
    echo 0
}
# cpu_ticks PID: utime+stime of the whole process.
cpu_ticks() {
    local s
    s=$(<"/proc/$1/stat")
    s=${s##*) }
    awk '{ print $12 + $13 }' <<<"$s"
}
CLK_TCK=$(getconf CLK_TCK)

reset_hwm() { echo 5 >"/proc/$1/clear_refs"; }

# sampler PID FILE: VmRSS (KiB) every SAMPLE_MS ms until killed.
start_sampler() {
    local pid=$1 out=$2 delay
    delay=$(fmt '%.3f' "$(awk -v m="$SAMPLE_MS" 'BEGIN { print m / 1000 }')")
    (
        trap 'exit 0' TERM
        while [[ -r /proc/$pid/status ]]; do
            status_kb "$pid" VmRSS
            sleep "$delay"
        done
    ) >"$out" &
    SAMPLER_PID=$!
}
stop_sampler() { stop_bg "$SAMPLER_PID"; SAMPLER_PID=; }
max_of() { awk 'BEGIN { m = 0 } $1 > m { m = $1 } END { print m }' "$1"; }

URL=
CURL_TLS=()
DATA=

start_daemon() { # start_daemon MODE LOGFILE: retries a port someone else took meanwhile
    local try
    for ((try = 0; try < 5; try++)); do
        start_daemon_once "$@" && return 0
    done
    bench_die "odysseusd ($1): no free port after 5 tries: $(tail -n 5 "$2")"
}

start_daemon_once() {
    local mode=$1 log=$2 port aport i
    bench_pick_port port 20000
    bench_pick_port aport 20000
    local args=(serve --data-dir "$DATA" --listen "127.0.0.1:$port" --agent-listen "127.0.0.1:$aport"
        --threads "$SERVER_THREADS" --argon2-memory-kib 8192 --log-level "$LOG_LEVEL")
    if [[ $mode == plain ]]; then
        args+=(--plain-http)
        URL=http://127.0.0.1:$port
        CURL_TLS=()
    else
        URL=https://127.0.0.1:$port
        CURL_TLS=(--cacert "$DATA/pki/ca.crt")
    fi
    "$ODYSSEUSD" "${args[@]}" >>"$log" 2>&1 &
    DAEMON_PID=$!
    for ((i = 0; i < 600; i++)); do
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            wait "$DAEMON_PID" 2>/dev/null || true
            DAEMON_PID=
            tail -n 1 "$log" | grep -q 'Address already in use' && return 1
            bench_die "odysseusd ($mode) exited during start-up: $(tail -n 20 "$log")"
        fi
        curl -fsS --max-time 1 "${CURL_TLS[@]}" -o /dev/null "$URL/readyz" 2>/dev/null && return 0
        sleep 0.1
    done
    bench_die "odysseusd ($mode) not ready after 60 s: $(tail -n 20 "$log")"
}

login() {
    local body tok
    body=$(jq -nc --arg e "$ADMIN_EMAIL" --arg p "$ADMIN_PASSWORD" '{email: $e, password: $p}')
    tok=$(curl -sS --max-time 30 "${CURL_TLS[@]}" -H 'Content-Type: application/json' \
        --data-binary "$body" "$URL/v1/auth/login" | jq -r '.access_token // empty')
    [[ -n $tok ]] || bench_die "platform admin login returned no access_token"
    echo "$tok"
}

readyz_ms() { # the time of one /readyz in ms, or "FAIL"
    local t
    t=$(curl -sS --max-time 5 "${CURL_TLS[@]}" -o /dev/null -w '%{http_code} %{time_total}' \
        "$URL/readyz" 2>/dev/null) || { echo FAIL; return 0; }
    [[ $t == 200\ * ]] || { echo FAIL; return 0; }
    fmt '%.1f' "$(awk -v s="${t#* }" 'BEGIN { print s * 1000 }')"
}

# The peer's query: the export's columns (hashes as hex) with its filter.
PEER_SQL="SELECT seq, time_ns, actor_type, actor_id, actor_email, tenant_id, action, resource,
  outcome, reason, request_id, source_ip, lower(hex(prev_hash)) AS prev_hash,
  lower(hex(hash)) AS hash FROM records WHERE tenant_id = '' ORDER BY seq"

# --- the run -----------------------------------------------------------------
echo "export-bench: $(bench_machine)"
echo "export-bench: build $BUILD_DIR ($BENCH_BUILDTYPE), commit $(bench_commit), odysseusd --threads $SERVER_THREADS, loopback"
echo "export-bench: data in $TMP ($(df -T "$TMP" | awk 'NR==2 {print $1, $2}')); sqlite3 $(sqlite3 --version | cut -d' ' -f1)"

ROWS=()     # the main table
SLOW=()     # slow-reader lines
declare -A PEAK # PEAK[N] = highest VmHWM (KiB) of any export of N records

for N in "${SIZE_LIST[@]}"; do
    DATA=$TMP/n$N/data
    mkdir -p "$TMP/n$N"
    printf '%s\n' "$ADMIN_PASSWORD" |
        "$ODYSSEUSD" init --data-dir "$DATA" --admin-email "$ADMIN_EMAIL" --password-stdin \
            >"$TMP/n$N/init.log" 2>&1 || bench_die "odysseusd init failed: $(cat "$TMP/n$N/init.log")"
    bench_note "N=$N: filling audit.db"
    "$FILL" --dir "$DATA" --records "$N" --writers "$FILL_WRITERS" >&2
    bench_note "N=$N: audit.db $(du -m "$DATA/audit.db" | cut -f1) MB"
    PEAK[$N]=0

    for mode in "${MODE_LIST[@]}"; do
        log=$TMP/n$N/odysseusd-$mode.log
        start_daemon "$mode" "$log"
        TOKEN=$(login)
        sleep 0.5
        for f in json csv; do
            out=$TMP/n$N/$mode-$f
            reset_hwm "$DAEMON_PID"
            before=$(status_kb "$DAEMON_PID" VmRSS)
            c0=$(cpu_ticks "$DAEMON_PID")
            start_sampler "$DAEMON_PID" "$out.rss"
            t0=$(now)
            set +e
            curl -sS --max-time 3600 "${CURL_TLS[@]}" -H "Authorization: Bearer $TOKEN" \
                -w '%{http_code}\n' -o >(wc -lc >"$out.count") \
                "$URL/v1/audit/export?format=$f" >"$out.code" 2>"$out.err"
            crc=$?
            set -e
            t1=$(now)
            stop_sampler
            c1=$(cpu_ticks "$DAEMON_PID")
            hwm=$(status_kb "$DAEMON_PID" VmHWM)
            sleep 0.3
            after=$(status_kb "$DAEMON_PID" VmRSS)
            for ((i = 0; i < 50; i++)); do [[ -s $out.count ]] && break; sleep 0.1; done
            read -r lines bytes <"$out.count"
            code=$(<"$out.code")
            if ((crc != 0)) || [[ $code != 200 ]]; then
                ODD+=("N=$N $mode $f: curl exit $crc, HTTP $code: $(head -c 300 "$out.err")")
            fi
            recs=$lines
            [[ $f == csv ]] && recs=$((lines - 1))
            ((recs >= N)) || ODD+=("N=$N $mode $f: $recs records exported, expected at least $N")
            peak=$(max_of "$out.rss")
            ((peak > hwm)) && hwm=$peak
            ((hwm > PEAK[$N])) && PEAK[$N]=$hwm
            secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
            cpu=$(awk -v a="$c0" -v b="$c1" -v t="$CLK_TCK" 'BEGIN { print (b - a) / t }')
            ROWS+=("$N|$mode|$f|$recs|$bytes|$secs|$cpu|$before|$peak|$hwm|$after")
        done

        # A slow reader on the largest log: the stream waits for it, memory stays flat,
        # the loop keeps answering; then it goes away mid-stream.
        if [[ $N == "$LARGEST" && $mode == plain ]]; then
            out=$TMP/n$N/slow
            reset_hwm "$DAEMON_PID"
            before=$(status_kb "$DAEMON_PID" VmRSS)
            start_sampler "$DAEMON_PID" "$out.rss"
            curl -sS "${CURL_TLS[@]}" --limit-rate "$SLOW_RATE" -H "Authorization: Bearer $TOKEN" \
                -o "$out.body" "$URL/v1/audit/export?format=json" 2>"$out.err" &
            SLOW_PID=$!
            worst=0
            fails=0
            for ((s = 0; s < SLOW_SECONDS * 4; s++)); do
                sleep 0.25
                ms=$(readyz_ms)
                if [[ $ms == FAIL ]]; then
                    fails=$((fails + 1))
                else
                    worst=$(awk -v a="$worst" -v b="$ms" 'BEGIN { print (b > a) ? b : a }')
                fi
            done
            got=$(stat -c %s "$out.body" 2>/dev/null || echo 0)
            kill -0 "$SLOW_PID" 2>/dev/null || ODD+=("slow reader finished or failed before $SLOW_SECONDS s: $(head -c 300 "$out.err")")
            stop_bg "$SLOW_PID"
            SLOW_PID=
            sleep 0.5
            stop_sampler
            hwm=$(status_kb "$DAEMON_PID" VmHWM)
            after=$(status_kb "$DAEMON_PID" VmRSS)
            peak=$(max_of "$out.rss")
            ((peak > hwm)) && hwm=$peak
            post=$(readyz_ms)
            kill -0 "$DAEMON_PID" 2>/dev/null || ODD+=("odysseusd died after the slow reader left")
            [[ $post != FAIL ]] || ODD+=("/readyz failed after the slow reader left")
            ((fails == 0)) || ODD+=("$fails /readyz requests failed while the slow reader was connected")
            SLOW+=("slow reader (curl --limit-rate $SLOW_RATE, format=json, N=$N, killed after ${SLOW_SECONDS} s): received $(fmt '%.1f' "$(awk -v b="$got" 'BEGIN { print b / 1048576 }')") MiB")
            SLOW+=("  odysseusd RSS before $(mib "$before") MiB, peak $(mib "$hwm") MiB (VmHWM; sampled max $(mib "$peak")), after it left $(mib "$after") MiB")
            SLOW+=("  /readyz while it was connected: $((SLOW_SECONDS * 4 - fails)) ok, $fails failed, slowest $worst ms; after it left: $post ms")
        fi
        stop_daemon
        errs=$(grep -c '"level":"\(warn\|error\|fatal\)"' "$log" || true)
        ((errs == 0)) || ODD+=("N=$N $mode: $errs warn/error lines in the daemon log, e.g. $(grep -m1 '"level":"\(warn\|error\|fatal\)"' "$log" | head -c 300)")
    done

    # The peer on the same file, daemon stopped: the sqlite3 shell.
    for f in json csv; do
        opt=(-json)
        [[ $f == csv ]] && opt=(-csv -header)
        t0=$(now)
        /usr/bin/time -f '%M' -o "$TMP/n$N/peer-$f.time" \
            sqlite3 -readonly "${opt[@]}" "$DATA/audit.db" "$PEER_SQL" | wc -lc >"$TMP/n$N/peer-$f.count"
        t1=$(now)
        prss=$(tail -n 1 "$TMP/n$N/peer-$f.time")
        read -r plines pbytes <"$TMP/n$N/peer-$f.count"
        psecs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
        printf -v "P_${N}_${f}" '%s|%s|%s' "$psecs" "$prss" "$pbytes"
    done
    rm -rf -- "$DATA/audit.db" "$DATA/audit.db-wal" "$DATA/audit.db-shm" # ~0.6 GB at 1M
done

# --- report ------------------------------------------------------------------
echo
echo "| N | mode | format | records | MB | odx s | records/s | MB/s | odx CPU s | RSS before MiB | peak sampled MiB | peak VmHWM MiB | after MiB | peer s | peer MB | peer max RSS MiB | odx/peer time |"
echo "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for r in "${ROWS[@]}"; do
    IFS='|' read -r N mode f recs bytes secs cpu before peak hwm after <<<"$r"
    pv=P_${N}_${f}
    IFS='|' read -r psecs prss pbytes <<<"${!pv}"
    printf '| %s | %s | %s | %s | %.1f | %.2f | %.0f | %.1f | %.2f | %s | %s | %s | %s | %.2f | %.1f | %s | %.2f |\n' \
        "$N" "$mode" "$f" "$recs" "$(awk -v b="$bytes" 'BEGIN { print b / 1e6 }')" "$secs" \
        "$(awk -v r="$recs" -v s="$secs" 'BEGIN { print r / s }')" \
        "$(awk -v b="$bytes" -v s="$secs" 'BEGIN { print b / 1e6 / s }')" "$cpu" \
        "$(mib "$before")" "$(mib "$peak")" "$(mib "$hwm")" "$(mib "$after")" \
        "$psecs" "$(awk -v b="$pbytes" 'BEGIN { print b / 1e6 }')" "$(mib "$prss")" \
        "$(awk -v a="$secs" -v b="$psecs" 'BEGIN { print a / b }')"
done
echo
for l in "${SLOW[@]}"; do echo "$l"; done
SMALLEST=${SIZE_LIST[0]}
for n in "${SIZE_LIST[@]}"; do ((n < SMALLEST)) && SMALLEST=$n; done
if ((LARGEST > SMALLEST)); then
    echo
    growth=$((PEAK[$LARGEST] - PEAK[$SMALLEST]))
    echo "odysseusd peak RSS growth from $SMALLEST to $LARGEST records: $(mib "$growth") MiB ($growth KiB; peak $(mib "${PEAK[$SMALLEST]}") -> $(mib "${PEAK[$LARGEST]}") MiB, highest VmHWM of any export of that size)"
fi
echo
if ((${#ODD[@]})); then
    echo "odd things about odysseusd:"
    for l in "${ODD[@]}"; do echo "  - $l"; done
else
    echo "odysseusd: no warnings or errors in its logs, no failed requests, clean exits"
fi
