#!/usr/bin/env bash
# Agent API benchmark (issue 5): heartbeats per second over mutual TLS from
# many simulated agents (keep-alive, and a new TLS handshake per heartbeat)
# with odysseusd's CPU cost per heartbeat, and the time for 100 agents to
# enroll in parallel. The heartbeat runs are repeated, same client code,
# against nginx with the same certificate requiring client certificates from
# the same CA (one worker, the same core) in the same invocation.
#
# Goal: 1,000 agents at a 5 s heartbeat on one control-plane core with under
# 25 % of it used. Everything listens on and talks to 127.0.0.1 only.
#
# Usage: bench/agent-bench.sh            (see bench/README.md)
# Knobs (environment): BUILD_DIR (build-bench), DURATION (10, seconds per
# measured run), WARMUP (2), CONNECTIONS (64), AGENTS (100), ENROLL_THREADS
# (16), PACED_AGENTS (1000: connections of the paced runs, 0 skips them),
# CLIENT_THREADS (1 when pinned, else 2), PIN (1: odysseusd and nginx
# on one CPU, the load generator on another, when there are >= 2), NODE_GRACE
# (3600, see below), LOG_LEVEL (warn), KEEP_TMP (0: 1 keeps the temp dir with
# the daemon's log).
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init agent-bench build-bench

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
AGENTS=${AGENTS:-100}
ENROLL_THREADS=${ENROLL_THREADS:-16}
PACED_AGENTS=${PACED_AGENTS:-1000}
PIN=${PIN:-1}
# odysseusd --node-grace: while nginx is measured odysseusd gets no heartbeats
# for 12-16 s, and in the back-to-back keep-alive runs the agents without a
# connection of their own are silent; with the default grace (3 heartbeat
# intervals, 15 s) they would flip to unreachable and back, audited, inside the
# measured windows, which a steady fleet does not do.
NODE_GRACE=${NODE_GRACE:-3600}
LOG_LEVEL=${LOG_LEVEL:-warn}
KEEP_TMP=${KEEP_TMP:-0}

# The daemon reads these too and they would change what we start below.
unset ODYSSEUS_DATA_DIR ODYSSEUS_LISTEN ODYSSEUS_AGENT_LISTEN ODYSSEUS_THREADS ODYSSEUS_PLAIN_HTTP

ADMIN_EMAIL=bench@x.test
ADMIN_PASSWORD="agent-bench-admin-password-1"

for v in DURATION CONNECTIONS AGENTS ENROLL_THREADS NODE_GRACE; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer (got '${!v}')"
done
[[ $WARMUP =~ ^[0-9]+$ ]] || bench_die "WARMUP must be a number of seconds"
[[ $PACED_AGENTS =~ ^[0-9]+$ ]] || bench_die "PACED_AGENTS must be a number"
# One descriptor per connection on each side, plus the daemon's own.
want_fds=$((PACED_AGENTS + CONNECTIONS + 256))
(($(ulimit -n) >= want_fds)) || ulimit -n "$want_fds" 2>/dev/null ||
    bench_die "PACED_AGENTS=$PACED_AGENTS needs ulimit -n >= $want_fds (hard limit $(ulimit -Hn))"

# --- tools -------------------------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1; }
find_nginx() { command -v nginx 2>/dev/null || { [[ -x /usr/sbin/nginx ]] && echo /usr/sbin/nginx; } || true; }
NGINX=$(find_nginx)
if [[ -z $NGINX ]] || ! have curl || ! have taskset || ! have meson; then
    bench_note "installing what is missing (scripts/setup bench: nginx-light, curl, build tools)"
    scripts/setup bench
    have taskset || { [[ $(id -u) == 0 ]] && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux >/dev/null; }
    NGINX=$(find_nginx)
fi
[[ -x $NGINX ]] || bench_die "nginx not found after install"

# --- build -------------------------------------------------------------------
bench_build odysseusd bench/agent-bench
bench_buildtype
ODYSSEUSD=$ROOT/$BUILD_DIR/odysseusd
BENCH=$ROOT/$BUILD_DIR/bench/agent-bench
[[ $BUILD_DIR == /* ]] && { ODYSSEUSD=$BUILD_DIR/odysseusd; BENCH=$BUILD_DIR/bench/agent-bench; }

# --- CPUs --------------------------------------------------------------------
# expand_cpus "0-2,5" -> "0 1 2 5"
expand_cpus() {
    local part out=() a b i
    IFS=, read -ra parts <<<"$1"
    for part in "${parts[@]}"; do
        if [[ $part == *-* ]]; then
            a=${part%-*} b=${part#*-}
            for ((i = a; i <= b; i++)); do out+=("$i"); done
        else
            out+=("$part")
        fi
    done
    echo "${out[@]}"
}
read -ra CPUS <<<"$(expand_cpus "$(taskset -cp $$ | sed 's/.*: //')")"
SRV_PIN=()
GEN_PIN=()
if [[ $PIN == 1 ]] && ((${#CPUS[@]} >= 2)); then
    SRV_PIN=(taskset -c "${CPUS[0]}")
    GEN_PIN=(taskset -c "${CPUS[1]}")
    PIN_NOTE="odysseusd and nginx pinned to CPU ${CPUS[0]}, the load generator to CPU ${CPUS[1]} (taskset)"
    CLIENT_THREADS=${CLIENT_THREADS:-1}
else
    PIN_NOTE="not pinned (${#CPUS[@]} CPU(s) available or PIN=0): servers and load generator share the CPUs"
    CLIENT_THREADS=${CLIENT_THREADS:-2}
fi
[[ $CLIENT_THREADS =~ ^[1-9][0-9]*$ ]] || bench_die "CLIENT_THREADS must be a positive integer"

# --- temp dir and cleanup ----------------------------------------------------
DAEMON_PID=
NGINX_PID=
DAEMON_RC=

stop_daemon() {
    [[ -n $DAEMON_PID ]] || return 0
    local pid=$DAEMON_PID
    DAEMON_PID=
    bench_stop_pid "$pid" 30
    DAEMON_RC=$BENCH_STOP_RC
    ((DAEMON_RC == 0)) || bench_note "odysseusd exited with status $DAEMON_RC (expected 0 after SIGTERM)"
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
bench_tmpdir /tmp/odx-agent-bench.XXXXXX stop_all
DATA=$TMP/data
NG=$TMP/nginx

# proc_info PID: "threads T, fds F, RSS R KiB (peak P KiB)"
proc_info() {
    local t r h f
    t=$(awk '/^Threads:/ {print $2}' "/proc/$1/status")
    r=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status")
    h=$(awk '/^VmHWM:/ {print $2}' "/proc/$1/status")
    f=$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    echo "threads $t, open fds $f, RSS $r KiB (peak $h KiB)"
}

# --- odysseusd -----------------------------------------------------------------
mkdir -p "$NG"
"$ODYSSEUSD" init --data-dir "$DATA" --admin-email "$ADMIN_EMAIL" --password-stdin \
    <<<"$ADMIN_PASSWORD" >"$TMP/init.log" 2>&1 || bench_die "odysseusd init failed: $(cat "$TMP/init.log")"
[[ -f $DATA/pki/server.crt && -f $DATA/pki/ca.crt ]] || bench_die "init made no pki/ in $DATA"

bench_pick_port API_PORT
bench_pick_port AGENT_PORT
bench_pick_port NGINX_PORT
"${SRV_PIN[@]}" "$ODYSSEUSD" serve --data-dir "$DATA" --listen "127.0.0.1:$API_PORT" \
    --agent-listen "127.0.0.1:$AGENT_PORT" --argon2-memory-kib 8192 --log-level "$LOG_LEVEL" \
    --node-grace "$NODE_GRACE" \
    >>"$TMP/odysseusd.log" 2>&1 &
DAEMON_PID=$!
for ((i = 0; i < 300; i++)); do
    kill -0 "$DAEMON_PID" 2>/dev/null ||
        { DAEMON_PID=; bench_die "odysseusd exited during start-up: $(tail -n 20 "$TMP/odysseusd.log")"; }
    curl -fsS --max-time 1 --cacert "$DATA/pki/ca.crt" -o /dev/null \
        "https://127.0.0.1:$API_PORT/readyz" 2>/dev/null && break
    sleep 0.1
done
((i < 300)) || bench_die "odysseusd not ready after 30 s: $(tail -n 20 "$TMP/odysseusd.log")"

# --- nginx: same certificate, client certificates from the same CA, 1 worker --------------
USER_LINE=
[[ $(id -u) == 0 ]] && USER_LINE="user root;"
cat >"$NG/nginx.conf" <<EOF
$USER_LINE
worker_processes 1;
daemon off;
pid $NG/nginx.pid;
error_log $NG/error.log warn;
events { worker_connections 4096; multi_accept on; }
http {
    access_log off;
    server_tokens off;
    default_type application/json;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
    client_body_temp_path $NG/client_body;
    proxy_temp_path $NG/proxy;
    fastcgi_temp_path $NG/fastcgi;
    uwsgi_temp_path $NG/uwsgi;
    scgi_temp_path $NG/scgi;
    ssl_certificate $DATA/pki/server.crt;
    ssl_certificate_key $DATA/pki/server.key;
    ssl_client_certificate $DATA/pki/ca.crt;
    ssl_verify_client on;
    ssl_protocols TLSv1.2 TLSv1.3;
    # No resumption, like odysseusd's agent port: every connection is a full handshake.
    ssl_session_cache off;
    ssl_session_tickets off;
    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        location = /agent/v1/status { return 200 '{"heartbeat_interval_s":5}'; }
        location / { return 404; }
    }
}
EOF
"$NGINX" -p "$NG/" -c "$NG/nginx.conf" -e "$NG/error.log" -t >/dev/null 2>&1 ||
    bench_die "nginx rejects its config: $("$NGINX" -p "$NG/" -c "$NG/nginx.conf" -e "$NG/error.log" -t 2>&1)"
"${SRV_PIN[@]}" "$NGINX" -p "$NG/" -c "$NG/nginx.conf" -e "$NG/error.log" >>"$NG/stderr.log" 2>&1 &
NGINX_PID=$!
for ((i = 0; i < 100; i++)); do
    kill -0 "$NGINX_PID" 2>/dev/null || { NGINX_PID=; bench_die "nginx exited: $(cat "$NG/error.log" "$NG/stderr.log")"; }
    bench_port_in_use "$NGINX_PORT" && break
    sleep 0.1
done
((i < 100)) || bench_die "nginx not listening after 10 s: $(cat "$NG/error.log")"
NGINX_WORKERS=$(ps -o pid= --ppid "$NGINX_PID" | tr -d ' ' | paste -sd, -)
[[ -n $NGINX_WORKERS ]] || bench_die "no nginx worker process"

# --- the run -----------------------------------------------------------------
echo "## odysseusd agent API — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
echo "machine: $(nproc) CPUs ($(bench_cpu_model)), $(uname -sr); commit $(bench_commit)"
echo "odysseusd: $ODYSSEUSD (buildtype $BENCH_BUILDTYPE), agent API on one event-loop thread, --log-level $LOG_LEVEL --node-grace $NODE_GRACE"
echo "nginx: $("$NGINX" -v 2>&1 | sed 's/^nginx version: //'), worker_processes 1, ssl_verify_client on, no session cache or tickets"
echo "$PIN_NOTE"
echo "load average at start: $(bench_loadavg) (other processes on the machine compete for the CPUs)"
START_INFO=$(proc_info "$DAEMON_PID")

AGENT_BENCH_PASSWORD=$ADMIN_PASSWORD "${GEN_PIN[@]}" "$BENCH" \
    --api "127.0.0.1:$API_PORT" --agent "127.0.0.1:$AGENT_PORT" --ca "$DATA/pki/ca.crt" \
    --email "$ADMIN_EMAIL" --pid "$DAEMON_PID" --workdir "$TMP" \
    --peer "127.0.0.1:$NGINX_PORT" --peer-pids "$NGINX_WORKERS" \
    --agents "$AGENTS" --enroll-threads "$ENROLL_THREADS" --connections "$CONNECTIONS" \
    --threads "$CLIENT_THREADS" --seconds "$DURATION" --warmup "$WARMUP" \
    --paced-agents "$PACED_AGENTS" --period 5 ||
    bench_die "agent-bench failed (odysseusd log: $(tail -n 5 "$TMP/odysseusd.log"))"

# --- the daemon after the run ---------------------------------------------------
echo
echo "load average at end: $(bench_loadavg)"
echo "odysseusd at start: $START_INFO"
echo "odysseusd at end:   $(proc_info "$DAEMON_PID")"
stop_daemon
warns=$(grep -c '"level":"warn"' "$TMP/odysseusd.log" || true)
errors=$(grep -c '"level":"error"' "$TMP/odysseusd.log" || true)
echo "odysseusd log: $warns warn, $errors error line(s); exit status $DAEMON_RC after SIGTERM"
if ((warns + errors)); then
    grep -E '"level":"(warn|error)"' "$TMP/odysseusd.log" | sed -E 's/"(time|ts)":"[^"]*",?//' |
        sort | uniq -c | sort -rn | head -n 5 | sed 's/^/  /'
fi
ngx_err=$(grep -vc '\[notice\]' "$NG/error.log" 2>/dev/null || true)
((ngx_err == 0)) || echo "nginx error.log: $ngx_err line(s) above notice"
