#!/usr/bin/env bash
# API benchmark: odysseusd against nginx serving a static file of the same size.
#
# Cases: authenticated GET /v1/me and the tenant-scoped GET /v1/users (a page
# of ~20 users), each over plain HTTP and TLS, keep-alive, wrk -t2 -c64. For
# every case the same wrk run (same Authorization header) is pointed at nginx
# serving the very bytes odysseusd answered, from a file. One daemon at a time
# (plain run, stop, TLS run) on one temporary data dir; nginx runs throughout
# but is idle while odysseusd is measured, and the reverse.
#
# Goal (issue 2): odysseusd ≥ 0.5× nginx req/s on plain HTTP and on TLS, and
# p99 < 5 ms. Everything listens on and talks to 127.0.0.1 only.
#
# Usage: bench/api-bench.sh            (see bench/README.md)
# Knobs (environment): BUILD_DIR (build-release), DURATION (10, seconds per
# measured run), WARMUP (2), WRK_THREADS (2), CONNECTIONS (64),
# SERVER_THREADS (2: odysseusd --threads and nginx worker_processes),
# USERS (20), LOG_LEVEL (warn), KEEP_TMP (0: 1 keeps the temp dir and logs).
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init api-bench

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
WRK_THREADS=${WRK_THREADS:-2}
CONNECTIONS=${CONNECTIONS:-64}
SERVER_THREADS=${SERVER_THREADS:-2}
USERS=${USERS:-20}
LOG_LEVEL=${LOG_LEVEL:-warn}
KEEP_TMP=${KEEP_TMP:-0}
GOAL_RATIO=0.5
GOAL_P99_MS=5

# The daemon reads these too and they would override what we mean below
# (ODYSSEUS_PLAIN_HTTP=1 would turn the TLS run into a plain one).
unset ODYSSEUS_DATA_DIR ODYSSEUS_LISTEN ODYSSEUS_THREADS ODYSSEUS_PLAIN_HTTP

ADMIN_EMAIL=root@bench.test
ADMIN_PASSWORD="platform-admin-password-1"
TENANT_ADMIN_EMAIL=admin@tenant.bench.test
TENANT_ADMIN_PASSWORD="tenant-admin-password-1"

for v in DURATION WARMUP WRK_THREADS CONNECTIONS SERVER_THREADS USERS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer (got '${!v}')"
done

# --- tools -------------------------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1; }
NGINX=$(command -v nginx 2>/dev/null || true)
[[ -z $NGINX && -x /usr/sbin/nginx ]] && NGINX=/usr/sbin/nginx
missing=()
have wrk || missing+=(wrk)
[[ -n $NGINX ]] || missing+=(nginx-light)
have openssl || missing+=(openssl)
have curl || missing+=(curl)
have jq || missing+=(jq)
have ps || missing+=(procps)
if ((${#missing[@]})); then
    [[ $(id -u) == 0 ]] || bench_die "missing packages: ${missing[*]} (install them or run as root)"
    bench_note "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    NGINX=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
fi
[[ -x $NGINX ]] || bench_die "nginx not found after install"

# --- the daemon --------------------------------------------------------------
ODYSSEUSD=$BUILD_DIR/odysseusd
if [[ ! -x $ODYSSEUSD ]]; then
    bench_note "$ODYSSEUSD missing: building $BUILD_DIR (release)"
    bench_build odysseusd
fi
[[ -x $ODYSSEUSD ]] || bench_die "$ODYSSEUSD still missing after the build"
ODYSSEUSD=$(cd "$(dirname "$ODYSSEUSD")" && pwd)/$(basename "$ODYSSEUSD")
bench_buildtype

# --- temp dir and cleanup ----------------------------------------------------
DAEMON_PID=
NGINX_PID=

stop_daemon() {
    [[ -n $DAEMON_PID ]] || return 0
    local pid=$DAEMON_PID
    DAEMON_PID=
    bench_stop_pid "$pid" 10
    ((BENCH_STOP_RC == 0)) || bench_note "odysseusd exited with status $BENCH_STOP_RC (expected 0 after SIGTERM)"
}

stop_nginx() {
    [[ -n $NGINX_PID ]] || return 0
    local pid=$NGINX_PID
    NGINX_PID=
    bench_stop_pid "$pid" 5
}

stop_all() {
    stop_daemon
    stop_nginx
}
bench_tmpdir /tmp/odx-bench.XXXXXX stop_all
DATA=$TMP/data
NG=$TMP/nginx

# --- helpers -----------------------------------------------------------------
CLK_TCK=$(getconf CLK_TCK)
# proc_stat FILE: "tid comm utime+stime" from a /proc/.../stat file (comm may
# hold spaces and parentheses: it runs from the first "(" to the last ")").
proc_stat() {
    local line comm rest f
    line=$(<"$1") || return 1
    comm=${line#*(}
    comm=${comm%)*}
    rest=${line##*) }
    read -ra f <<<"$rest"
    # after "(comm) ": f[0] is field 3 (state), so utime (14) is f[11], stime (15) f[12]
    echo "${line%% *} ${comm// /_} $((f[11] + f[12]))"
}
# cpu_ticks PID...: user+system clock ticks used so far by these processes
# (a process's stat counts all its threads).
cpu_ticks() {
    local p total=0 s
    for p in "$@"; do
        s=$(proc_stat "/proc/$p/stat" 2>/dev/null) || continue
        total=$((total + ${s##* }))
    done
    echo "$total"
}
# thread_ticks PID: "tid comm ticks" for every thread of PID.
thread_ticks() {
    local f
    for f in /proc/"$1"/task/*/stat; do
        proc_stat "$f" 2>/dev/null || true
    done
}

nginx_workers() { ps -o pid= --ppid "$NGINX_PID" | tr -d ' ' | tr '\n' ' '; }

# Per-daemon state set by start_daemon.
URL=
CURL_TLS=()

# api METHOD PATH [TOKEN] [JSON]: prints the body, fails on a non-2xx answer.
api() {
    local method=$1 path=$2 token=${3:-} body=${4:-} code
    local args=(-sS --max-time 60 -X "$method" -o "$TMP/resp" -w '%{http_code}' "${CURL_TLS[@]}")
    if [[ -n $token ]]; then args+=(-H "Authorization: Bearer $token"); fi
    if [[ -n $body ]]; then args+=(-H 'Content-Type: application/json' --data-binary @-); fi
    code=$(printf '%s' "$body" | curl "${args[@]}" "$URL$path") || bench_die "$method $path: curl failed"
    [[ $code == 2?? ]] || bench_die "$method $path -> HTTP $code: $(head -c 400 "$TMP/resp")"
    cat "$TMP/resp"
}

login() {
    local tok
    tok=$(api POST /v1/auth/login "" "$(jq -nc --arg e "$1" --arg p "$2" '{email: $e, password: $p}')" |
        jq -r '.access_token // empty')
    [[ -n $tok ]] || bench_die "login of $1 returned no access_token"
    echo "$tok"
}

start_daemon() {
    local mode=$1 port i
    bench_pick_port port 20000
    local args=(serve --data-dir "$DATA" --listen "127.0.0.1:$port"
        --threads "$SERVER_THREADS" --log-level "$LOG_LEVEL")
    if [[ $mode == plain ]]; then
        args+=(--plain-http)
        URL=http://127.0.0.1:$port
        CURL_TLS=()
    else
        URL=https://127.0.0.1:$port
        CURL_TLS=(--cacert "$DATA/pki/ca.crt")
    fi
    "$ODYSSEUSD" "${args[@]}" >>"$TMP/odysseusd-$mode.log" 2>&1 &
    DAEMON_PID=$!
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$DAEMON_PID" 2>/dev/null; then
            DAEMON_PID=
            bench_die "odysseusd ($mode) exited during start-up: $(tail -n 20 "$TMP/odysseusd-$mode.log")"
        fi
        curl -fsS --max-time 1 "${CURL_TLS[@]}" -o /dev/null "$URL/readyz" 2>/dev/null && return 0
        sleep 0.1
    done
    bench_die "odysseusd ($mode) not ready after 30 s: $(tail -n 20 "$TMP/odysseusd-$mode.log")"
}

# Platform admin → tenant with its admin → USERS users in that tenant.
populate() {
    local admin tenant tok i role roles=(admin operator developer readonly)
    admin=$(login "$ADMIN_EMAIL" "$ADMIN_PASSWORD")
    api POST /v1/tenants "$admin" "$(jq -nc --arg e "$TENANT_ADMIN_EMAIL" --arg p "$TENANT_ADMIN_PASSWORD" \
        '{name: "bench", admin: {email: $e, password: $p}}')" >"$TMP/tenant.json"
    tenant=$(jq -r .id "$TMP/tenant.json")
    tok=$(login "$TENANT_ADMIN_EMAIL" "$TENANT_ADMIN_PASSWORD")
    for ((i = 1; i <= USERS; i++)); do
        role=${roles[i % 4]}
        api POST /v1/users "$tok" "$(jq -nc --arg e "$(printf 'user%02d@tenant.bench.test' "$i")" \
            --arg r "$role" '{email: $e, password: "bench-user-password-1", role: $r}')" >/dev/null
    done
    bench_note "tenant $tenant with its admin and $USERS users"
}

# tls_info PORT: negotiated protocol, cipher, key exchange and signature.
tls_info() {
    local out
    out=$(openssl s_client -connect "127.0.0.1:$1" </dev/null 2>/dev/null || true)
    printf '%s, %s, %s, %s' \
        "$(sed -n 's/^New, \([^,]*\), Cipher is \(.*\)/\1 \2/p' <<<"$out" | head -n1)" \
        "$(sed -n 's/^Server Temp Key: \([^,]*\).*/kx \1/p' <<<"$out" | head -n1)" \
        "$(sed -n 's/^Peer signature type: \(.*\)/sig \1/p' <<<"$out" | head -n1)" \
        "$(sed -n 's/^Server public key is \(.*\)/key \1/p' <<<"$out" | head -n1)"
}

# wrk output → "rps p50_ms p99_ms non2xx socket_errors"
parse_wrk() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /m$/)  return v * 60000
            if (v ~ /s$/)  return v * 1000
            return v + 0
        }
        /^Requests\/sec:/            { rps = $2 }
        $1 == "50%"                  { p50 = ms($2) }
        $1 == "99%"                  { p99 = ms($2) }
        /Non-2xx or 3xx responses:/  { bad = $NF }
        /Socket errors:/             { gsub(/,/, ""); err = $4 + $6 + $8 + $10 }
        END { printf "%.0f %.3f %.3f %d %d\n", rps, p50, p99, bad, err }' "$1"
}

# measure LABEL URL PIDS...: warm up, then the measured wrk run; prints
# "rps p50 p99 non2xx errors cpu%". Leaves the wrk output in $TMP/wrk-LABEL.txt
# and per-thread CPU ticks of the first PID before/after the measured run in
# $TMP/threads{0,1}-LABEL.txt, its length in ns in $TMP/elapsed-LABEL.
measure() {
    local label=$1 url=$2
    shift 2
    local hdr="Authorization: Bearer $TOKEN" c0 c1 t0 t1 stats cpu
    wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${WARMUP}s" -H "$hdr" "$url" >"$TMP/warm-$label.txt" 2>&1 ||
        bench_die "wrk warm-up against $url failed: $(cat "$TMP/warm-$label.txt")"
    thread_ticks "$1" >"$TMP/threads0-$label.txt"
    c0=$(cpu_ticks "$@")
    t0=$(date +%s%N)
    wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "$hdr" "$url" \
        >"$TMP/wrk-$label.txt" 2>&1 || bench_die "wrk against $url failed: $(cat "$TMP/wrk-$label.txt")"
    t1=$(date +%s%N)
    c1=$(cpu_ticks "$@")
    thread_ticks "$1" >"$TMP/threads1-$label.txt"
    echo $((t1 - t0)) >"$TMP/elapsed-$label"
    stats=$(parse_wrk "$TMP/wrk-$label.txt")
    cpu=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v ns=$((t1 - t0)) \
        'BEGIN { printf "%.0f", 100 * d / hz / (ns / 1e9) }')
    echo "$stats $cpu"
}

# --- nginx -------------------------------------------------------------------
mkdir -p "$NG/www" "$DATA"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
    -keyout "$NG/server.key" -out "$NG/server.crt" >/dev/null 2>&1 || bench_die "openssl req failed"
bench_pick_port NGINX_PLAIN_PORT 20000
bench_pick_port NGINX_TLS_PORT 20000
sed -e "s|@PREFIX@|$NG|g" -e "s|@WORKERS@|$SERVER_THREADS|g" \
    -e "s|@PLAIN_PORT@|$NGINX_PLAIN_PORT|g" -e "s|@TLS_PORT@|$NGINX_TLS_PORT|g" \
    "$ROOT/bench/nginx.conf.in" >"$NG/nginx.conf"
echo '{}' >"$NG/www/probe.json"
"$NGINX" -p "$NG/" -c "$NG/nginx.conf" -e "$NG/error.log" -t >/dev/null 2>&1 ||
    bench_die "nginx rejects its config: $("$NGINX" -p "$NG/" -c "$NG/nginx.conf" -e "$NG/error.log" -t 2>&1)"
"$NGINX" -p "$NG/" -c "$NG/nginx.conf" -e "$NG/error.log" >>"$NG/stderr.log" 2>&1 &
NGINX_PID=$!
for ((i = 0; i < 100; i++)); do
    kill -0 "$NGINX_PID" 2>/dev/null || { NGINX_PID=; bench_die "nginx exited: $(cat "$NG/error.log" "$NG/stderr.log")"; }
    curl -fsS --max-time 1 -o /dev/null "http://127.0.0.1:$NGINX_PLAIN_PORT/probe.json" 2>/dev/null &&
        curl -fsS --max-time 1 --cacert "$NG/server.crt" -o /dev/null \
            "https://127.0.0.1:$NGINX_TLS_PORT/probe.json" 2>/dev/null && break
    sleep 0.1
done
((i < 100)) || bench_die "nginx not answering after 10 s: $(cat "$NG/error.log")"

# --- the run -----------------------------------------------------------------
"$ODYSSEUSD" init --data-dir "$DATA" --admin-email "$ADMIN_EMAIL" --password-stdin \
    <<<"$ADMIN_PASSWORD" >"$TMP/init.log" 2>&1 || bench_die "odysseusd init failed: $(cat "$TMP/init.log")"

ROWS=()
DIAG=()
TLS_NOTES=()
TOKEN=
populated=0
for mode in plain tls; do
    start_daemon "$mode"
    if ((populated == 0)); then
        populate
        populated=1
    fi
    if [[ $mode == plain ]]; then
        ngx=http://127.0.0.1:$NGINX_PLAIN_PORT
        ngx_curl=()
    else
        ngx=https://127.0.0.1:$NGINX_TLS_PORT
        ngx_curl=(--cacert "$NG/server.crt")
        port=${URL##*:}
        TLS_NOTES+=("odysseusd: $(tls_info "$port")")
        TLS_NOTES+=("nginx:     $(tls_info "$NGINX_TLS_PORT")")
    fi
    for path in /v1/me /v1/users; do
        name=${path#/v1/}
        case_name="GET $path $mode"
        label=$name-$mode
        TOKEN=$(login "$TENANT_ADMIN_EMAIL" "$TENANT_ADMIN_PASSWORD") # 15 min tokens: fresh per case
        # The real answer, byte for byte, becomes nginx's file.
        code=$(curl -sS --max-time 10 "${CURL_TLS[@]}" -H "Authorization: Bearer $TOKEN" \
            -D "$TMP/hdr-odx-$label.txt" -o "$NG/www/$label.json" -w '%{http_code}' "$URL$path")
        [[ $code == 200 ]] || bench_die "GET $path ($mode) -> $code: $(head -c 400 "$NG/www/$label.json")"
        [[ $path != /v1/users ]] || jq -e --argjson n "$USERS" '.items | length > $n' \
            "$NG/www/$label.json" >/dev/null || bench_note "warning: GET /v1/users has fewer items than expected"
        body_bytes=$(wc -c <"$NG/www/$label.json")
        curl -fsS --max-time 10 "${ngx_curl[@]}" -H "Authorization: Bearer $TOKEN" \
            -D "$TMP/hdr-ngx-$label.txt" -o "$TMP/ngx-$label.body" "$ngx/$label.json" ||
            bench_die "nginx does not serve $label.json"
        cmp -s "$TMP/ngx-$label.body" "$NG/www/$label.json" || bench_die "nginx body for $label differs"

        bench_note "$case_name: odysseusd (${WARMUP}+${DURATION} s)"
        stats=$(measure "odx-$label" "$URL$path" "$DAEMON_PID")
        read -r o_rps o_p50 o_p99 o_bad o_err o_cpu <<<"$stats"
        bench_note "$case_name: nginx (${WARMUP}+${DURATION} s)"
        # shellcheck disable=SC2046 # word splitting of the worker pid list is intended
        stats=$(measure "ngx-$label" "$ngx/$label.json" $(nginx_workers))
        read -r n_rps n_p50 n_p99 n_bad n_err n_cpu <<<"$stats"

        read -r ratio verdict < <(awk -v o="$o_rps" -v n="$n_rps" -v p="$o_p99" -v gr="$GOAL_RATIO" \
            -v gp="$GOAL_P99_MS" -v bad=$((o_bad + o_err + n_bad + n_err)) 'BEGIN {
                r = n > 0 ? o / n : 0
                v = (r >= gr ? "ratio ok" : "ratio LOW") ", " (p < gp ? "p99 ok" : "p99 HIGH")
                if (bad > 0) v = "INVALID (errors)"
                printf "%.2f %s\n", r, v }')
        ROWS+=("$(printf '| %-19s | %9s | %7.2f | %7.2f | %9s | %7.2f | %7.2f | %5s | %-20s |' \
            "$case_name" "$o_rps" "$o_p50" "$o_p99" "$n_rps" "$n_p50" "$n_p99" "$ratio" "$verdict")")

        # Busiest odysseusd threads during the measured run (CPU % of one core).
        threads=$(awk -v hz="$CLK_TCK" -v ns="$(<"$TMP/elapsed-odx-$label")" '
            NR == FNR { a[$1] = $3; next }
            { d = $3 - a[$1]; if (d > 0) printf "%s %.0f\n", $2, 100 * d / hz / (ns / 1e9) }' \
            "$TMP/threads0-odx-$label.txt" "$TMP/threads1-odx-$label.txt" |
            sort -k2,2nr | head -n 6 | awk '{printf "%s%s %s%%", (NR > 1 ? ", " : ""), $1, $2}')
        DIAG+=("$(printf '| %-19s | %5s | %5s / %-5s | %4s%% / %4s%% | %s / %s | %s |' \
            "$case_name" "$body_bytes" \
            "$(($(wc -c <"$TMP/hdr-odx-$label.txt")))" "$(($(wc -c <"$TMP/hdr-ngx-$label.txt")))" \
            "$o_cpu" "$n_cpu" "$((o_bad + o_err))" "$((n_bad + n_err))" "${threads:-n/a}")")
    done
    stop_daemon
done

# --- report ------------------------------------------------------------------
echo
echo "## odysseusd vs nginx — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
echo "machine: $(nproc) CPUs ($(bench_cpu_model)), $(uname -sr)"
echo "odysseusd: $ODYSSEUSD (buildtype $BENCH_BUILDTYPE), --threads $SERVER_THREADS, --log-level $LOG_LEVEL"
echo "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), worker_processes $SERVER_THREADS, access_log off"
echo "wrk: -t$WRK_THREADS -c$CONNECTIONS -d${DURATION}s --latency (after ${WARMUP} s warm-up), keep-alive, 127.0.0.1"
for t in "${TLS_NOTES[@]}"; do echo "TLS $t"; done
echo
echo "| case                | odx req/s | odx p50 | odx p99 | ngx req/s | ngx p50 | ngx p99 | ratio | goals                |"
echo "|---------------------|----------:|--------:|--------:|----------:|--------:|--------:|------:|----------------------|"
printf '%s\n' "${ROWS[@]}"
echo
echo "latencies in ms; ratio = odysseusd req/s ÷ nginx req/s; goals: ratio ≥ $GOAL_RATIO, odysseusd p99 < $GOAL_P99_MS ms"
echo
echo "| case                | body B | hdr B odx/ngx | CPU odx / ngx | errors odx/ngx | busiest odysseusd threads (% of a core) |"
echo "|---------------------|-------:|---------------|---------------|----------------|------------------------------------------|"
printf '%s\n' "${DIAG[@]}"
echo
echo "CPU = server processes' user+system time during the measured run, % of one core ($(nproc) cores in all, shared with wrk)"
