#!/usr/bin/env bash
# Deployment benchmark (issue 6): the time from POST /v1/deployments with 20
# replicas to all of them running, side by side in the same invocation with
# 20 sequential `docker run -d` of the same image with the same limits and
# hardening (the peer), on the same Docker Engine. Then the agent's CPU (and
# odysseusd's, and dockerd's) with 100 containers on the node in steady state.
#
# Goal: at most 1.2x the plain Docker time. Nothing here passes or fails on a
# timing: it prints the numbers and their ratios.
#
# Everything real: odysseusd (init + serve, TLS on loopback), odysseus-agent
# enrolled with a token and running on the real /var/run/docker.sock, the
# image odysseus-test/busybox:1 built locally (tests/images/build.sh, no
# registry).
#
# Usage: bench/deploy-bench.sh            (see bench/README.md)
# Knobs (environment): BUILD_DIR (build-release), ROUNDS (3), REPLICAS (20),
# BIG (100: containers of the CPU run, 0 skips it), STEADY (30, seconds of
# the CPU window), SETTLE (10, seconds of quiet before it), POLL_MS (50),
# HEARTBEAT (1, odysseusd --heartbeat-interval), STRACE (1: count the agent's
# Engine calls in a separate window after the CPU one, when strace exists),
# LOG_LEVEL (warn, odysseusd's), KEEP_TMP (0: 1 keeps the temp dir with the
# logs).
# shellcheck source=bench/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
bench_init deploy-bench

ROUNDS=${ROUNDS:-3}
REPLICAS=${REPLICAS:-20}
BIG=${BIG:-100}
STEADY=${STEADY:-30}
SETTLE=${SETTLE:-10}
POLL_MS=${POLL_MS:-50}
HEARTBEAT=${HEARTBEAT:-1}
STRACE=${STRACE:-1}
LOG_LEVEL=${LOG_LEVEL:-warn}
KEEP_TMP=${KEEP_TMP:-0}
IMAGE=odysseus-test/busybox:1

unset ODYSSEUS_DATA_DIR ODYSSEUS_LISTEN ODYSSEUS_AGENT_LISTEN ODYSSEUS_THREADS ODYSSEUS_PLAIN_HTTP
# The docker CLI may be newer than Debian's dockerd 20.10 (docs/docker.md).
export DOCKER_API_VERSION=1.41

for v in ROUNDS REPLICAS STEADY POLL_MS HEARTBEAT; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || bench_die "$v must be a positive integer (got '${!v}')"
done
[[ $BIG =~ ^[0-9]+$ && $SETTLE =~ ^[0-9]+$ ]] || bench_die "BIG and SETTLE must be numbers"
((REPLICAS <= 100 && BIG <= 100)) || bench_die "a deployment has at most 100 replicas"

have() { command -v "$1" >/dev/null 2>&1; }
for t in curl jq docker meson ninja; do have "$t" || bench_die "$t is missing (scripts/setup test installs it)"; done

# --- the engine and the image ---------------------------------------------------
scripts/docker-up || bench_die "no Docker Engine (scripts/docker-up failed)"
tests/images/build.sh >/dev/null || bench_die "tests/images/build.sh failed"
docker image inspect "$IMAGE" >/dev/null 2>&1 || bench_die "no image $IMAGE after tests/images/build.sh"
DOCKERD_PID=$(pidof dockerd 2>/dev/null | awk '{print $1}' || true)

# --- build -------------------------------------------------------------------
bench_build odysseusd odysseus-agent
bench_buildtype
case $BUILD_DIR in /*) B=$BUILD_DIR ;; *) B=$ROOT/$BUILD_DIR ;; esac
# What was built: the build's source tree, its commit, and whether it had local changes.
SRC=$(jq -r .directories.source "$B/meson-info/meson-info.json" 2>/dev/null || echo "$ROOT")
SRC_REV=$(git -C "$SRC" describe --always --dirty 2>/dev/null || echo "not a git checkout")
ODYSSEUSD=$B/odysseusd
AGENT=$B/odysseus-agent

# --- temp dir, ports and cleanup ----------------------------------------------
TENANT_ID=
DAEMON_PID=
AGENT_PID=
EV_PID=
DAEMON_RC=
AGENT_RC=

stop_agent() {
    [[ -n $AGENT_PID ]] || return 0
    local pid=$AGENT_PID
    AGENT_PID=
    bench_stop_pid "$pid" 40
    AGENT_RC=$BENCH_STOP_RC
}

stop_daemon() {
    [[ -n $DAEMON_PID ]] || return 0
    local pid=$DAEMON_PID
    DAEMON_PID=
    bench_stop_pid "$pid" 30
    DAEMON_RC=$BENCH_STOP_RC
}

remove_ours() { # every container and network this run made
    local ids
    ids=$(docker ps -aq --filter label=bench=peer --filter "label=bench.run=$RUN" 2>/dev/null || true)
    [[ -z $ids ]] || docker rm -f $ids >/dev/null 2>&1 || true
    if [[ -n $TENANT_ID ]]; then
        ids=$(docker ps -aq --filter "label=odysseus.tenant=$TENANT_ID" 2>/dev/null || true)
        [[ -z $ids ]] || docker rm -f $ids >/dev/null 2>&1 || true
        docker network rm "odx-$TENANT_ID" >/dev/null 2>&1 || true
    fi
    docker network rm "$PEER_NET" >/dev/null 2>&1 || true
}

stop_all() {
    [[ -z $EV_PID ]] || { kill "$EV_PID" 2>/dev/null || true; wait "$EV_PID" 2>/dev/null || true; }
    # The agent first: a running agent would make the containers again.
    stop_agent
    stop_daemon
    remove_ours
}
bench_tmpdir /tmp/odx-deploy-bench.XXXXXX stop_all
DATA=$TMP/data
RUN=$(basename "$TMP" | sed 's/.*\.//' | tr 'A-Z' 'a-z')
RUN=${RUN//[^a-z0-9]/x}
PEER_NET=bench-peer-$RUN

# --- small tools ---------------------------------------------------------------------
now_us() { local t=${EPOCHREALTIME/[.,]/}; echo "$t"; }
# A sleep without a process: read on a pipe nobody writes, with a timeout.
exec {NAP_FD}<> <(:)
nap_ms() { (($1 > 0)) || return 0; read -r -t "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))" -u "$NAP_FD" _ || true; }
secs() { printf '%d.%02d' $(($1 / 1000000)) $((($1 % 1000000) / 10000)); } # µs -> s.ss
ratio() { # ratio A B (integers) -> A/B with 2 decimals, or "-"
    (($2 > 0 && $1 > 0)) || { echo -; return; }
    local x=$(($1 * 100 / $2))
    printf '%d.%02d' $((x / 100)) $((x % 100))
}
median() { # median N1 N2 ... (integers; "-" ignored)
    local v=() x
    for x in "$@"; do [[ $x =~ ^[0-9]+$ ]] && v+=("$x"); done
    ((${#v[@]})) || { echo -; return; }
    printf '%s\n' "${v[@]}" | sort -n | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'
}
iso_us() { date -d "$1" +%s%6N 2>/dev/null || echo 0; } # RFC 3339 -> µs since the epoch

# cpu_ticks PID [TID]: utime+stime in clock ticks
cpu_ticks() {
    local f=/proc/$1/stat s
    [[ -n ${2-} ]] && f=/proc/$1/task/$2/stat
    s=$(<"$f") || { echo 0; return; }
    s=${s##*) }
    read -ra a <<<"$s"
    echo $((a[11] + a[12]))
}
HZ=$(getconf CLK_TCK)
ticks_ms() { echo $(($1 * 1000 / HZ)); }
# child_ticks: CPU of this script's reaped children (curl, docker CLI), in ticks
child_ticks() {
    local s
    s=$(<"/proc/$$/stat")
    s=${s##*) }
    read -ra a <<<"$s"
    echo $((a[13] + a[14]))
}
dockerd_ticks() { [[ -n $DOCKERD_PID ]] && cpu_ticks "$DOCKERD_PID" || echo 0; }
# thread_ns PID TID: time on a CPU in ns (schedstat: finer than the 10 ms ticks)
thread_ns() { local a; read -r a _ <"/proc/$1/task/$2/schedstat" 2>/dev/null && echo "$a" || echo 0; }
proc_info() { # threads, fds, RSS of PID
    local t r f
    t=$(awk '/^Threads:/ {print $2}' "/proc/$1/status" 2>/dev/null)
    r=$(awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null)
    f=$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
    echo "threads $t, fds $f, RSS $r KiB"
}

# --- the API (TLS on loopback, the daemon's own CA) ---------------------------------
CA=$DATA/pki/ca.crt
HTTP_CODE=
RESP=
api() { # api METHOD PATH TOKEN [BODY]: sets HTTP_CODE and RESP
    local args=(-sS --max-time 30 --cacert "$CA" -X "$1" -o "$TMP/resp" -w '%{http_code}')
    [[ -n $3 ]] && args+=(-H "Authorization: Bearer $3")
    [[ -n ${4-} ]] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
    HTTP_CODE=$(curl "${args[@]}" "$API$2" 2>"$TMP/curl.err") || HTTP_CODE=000
    RESP=$(cat "$TMP/resp" 2>/dev/null || true)
}
want() { # want CODE WHAT
    [[ $HTTP_CODE == "$1" ]] || bench_die "$2: HTTP $HTTP_CODE (want $1): $RESP $(cat "$TMP/curl.err")"
}
login() { # login EMAIL PASSWORD -> access token
    api POST /v1/auth/login "" "$(jq -nc --arg e "$1" --arg p "$2" '{email: $e, password: $p}')"
    want 200 "login as $1"
    jq -r .access_token <<<"$RESP"
}

ADMIN_EMAIL=bench@x.test
ADMIN_PASSWORD=deploy-bench-admin-password-1
TENANT_EMAIL=admin@deploy-bench.test
TENANT_PASSWORD=deploy-bench-tenant-password-1

# --- odysseusd -----------------------------------------------------------------
"$ODYSSEUSD" init --data-dir "$DATA" --admin-email "$ADMIN_EMAIL" --password-stdin \
    <<<"$ADMIN_PASSWORD" >"$TMP/init.log" 2>&1 || bench_die "odysseusd init failed: $(cat "$TMP/init.log")"
bench_pick_port API_PORT
bench_pick_port AGENT_PORT
API=https://127.0.0.1:$API_PORT
"$ODYSSEUSD" serve --data-dir "$DATA" --listen "127.0.0.1:$API_PORT" \
    --agent-listen "127.0.0.1:$AGENT_PORT" --heartbeat-interval "$HEARTBEAT" \
    --argon2-memory-kib 8192 --log-level "$LOG_LEVEL" >>"$TMP/odysseusd.log" 2>&1 &
DAEMON_PID=$!
for ((i = 0; i < 300; i++)); do
    kill -0 "$DAEMON_PID" 2>/dev/null ||
        { DAEMON_PID=; bench_die "odysseusd exited during start-up: $(tail -n 20 "$TMP/odysseusd.log")"; }
    curl -fsS --max-time 1 --cacert "$CA" -o /dev/null "$API/readyz" 2>/dev/null && break
    nap_ms 100
done
((i < 300)) || bench_die "odysseusd not ready after 30 s: $(tail -n 20 "$TMP/odysseusd.log")"

ADMIN_TOKEN=$(login "$ADMIN_EMAIL" "$ADMIN_PASSWORD")
api POST /v1/tenants "$ADMIN_TOKEN" "$(jq -nc --arg n "deploy-bench-$RUN" --arg e "$TENANT_EMAIL" \
    --arg p "$TENANT_PASSWORD" '{name: $n, admin: {email: $e, password: $p}}')"
want 201 "creating the tenant"
TENANT_ID=$(jq -r .id <<<"$RESP")
api PUT "/v1/tenants/$TENANT_ID/quotas" "$ADMIN_TOKEN" \
    '{"cpu_cores":100,"memory_mb":100000,"containers":500,"storage_mb":100000}'
want 200 "setting the tenant's quotas"
TOKEN=$(login "$TENANT_EMAIL" "$TENANT_PASSWORD")

# --- the agent -------------------------------------------------------------------
NODE_NAME=deploy-bench-$RUN
api POST /v1/nodes/enrollment-tokens "$ADMIN_TOKEN" "{\"node_name\":\"$NODE_NAME\",\"ttl_seconds\":600}"
want 201 "making an enrollment token"
ENROLL_TOKEN=$(jq -r .token <<<"$RESP")
"$AGENT" enroll --server "https://127.0.0.1:$AGENT_PORT" --token "$ENROLL_TOKEN" \
    --state-dir "$TMP/agent" >"$TMP/enroll.log" 2>&1 || bench_die "odysseus-agent enroll failed: $(cat "$TMP/enroll.log")"
unset ENROLL_TOKEN
NODE_ID=$(jq -r .node_id "$TMP/agent/agent.json")
"$AGENT" run --state-dir "$TMP/agent" >"$TMP/agent.log" 2>&1 &
AGENT_PID=$!
for ((i = 0; i < 300; i++)); do
    kill -0 "$AGENT_PID" 2>/dev/null || { AGENT_PID=; bench_die "the agent exited: $(tail -n 20 "$TMP/agent.log")"; }
    api GET "/v1/nodes/$NODE_ID" "$ADMIN_TOKEN"
    [[ $HTTP_CODE == 200 && $(jq -r '.state + " " + (.capacity.cpus // 0 | tostring)' <<<"$RESP") == "ready "[1-9]* ]] && break
    nap_ms 100
done
((i < 300)) || bench_die "the node is not ready after 30 s: $RESP; agent log: $(tail -n 5 "$TMP/agent.log")"
NODE_CPUS=$(jq -r .capacity.cpus <<<"$RESP")
NODE_MEM_MB=$(($(jq -r .capacity.memory_bytes <<<"$RESP") >> 20))

# The peer's own bridge network, like the tenant's network the agent makes.
docker network create --driver bridge --label bench=peer --label "bench.run=$RUN" "$PEER_NET" >/dev/null ||
    bench_die "cannot create the network $PEER_NET"

# --- one side of a round ---------------------------------------------------------------
# 20 sequential `docker run -d`, the same hardening and limits as the agent's
# HostConfig (docs/deployments.md): sets PEER_US.
peer_round() { # peer_round ROUND
    local k=$1 i t0 t1 n c0 k0
    c0=$(child_ticks) k0=$(dockerd_ticks)
    t0=$(now_us)
    for ((i = 0; i < REPLICAS; i++)); do
        docker run -d --name "bench-peer-$RUN-$k-$i" --read-only --cap-drop ALL \
            --security-opt no-new-privileges --user 65534:65534 --memory 32m --memory-swap 32m \
            --cpus 0.1 --pids-limit 64 --tmpfs /tmp:rw,nosuid,nodev,noexec,size=16m \
            --log-opt max-size=10m --log-opt max-file=3 --network "$PEER_NET" \
            --label bench=peer --label "bench.run=$RUN" "$IMAGE" sleep 3600 >/dev/null ||
            bench_die "docker run failed (peer, round $k, container $i)"
    done
    t1=$(now_us)
    PEER_US=$((t1 - t0))
    PEER_CPU="$(ticks_ms $(($(child_ticks) - c0))) $(ticks_ms $(($(dockerd_ticks) - k0)))"
    n=$(docker ps -q --filter label=bench=peer --filter "label=bench.run=$RUN" --filter status=running | wc -l)
    ((n == REPLICAS)) || bench_note "round $k: only $n of $REPLICAS peer containers run"
    docker ps -aq --filter label=bench=peer --filter "label=bench.run=$RUN" | xargs -r docker rm -f >/dev/null
}

# Engine-side: the Nth `start` event of the tenant's containers (docker events,
# timeNano), so nothing polls the Engine while the agent works.
events_start() { # events_start FILE T0_US
    docker events --since "$(($2 / 1000000 - 1))" --filter type=container --filter event=start \
        --filter "label=odysseus.tenant=$TENANT_ID" --format '{{.TimeNano}}' >"$1" 2>"$1.err" &
    EV_PID=$!
}
events_nth() { # events_nth FILE T0_US N -> µs from T0 to the Nth start at or after T0, or "-"
    local ns
    ns=$(awk '$1 ~ /^[0-9]+$/ {print substr($1, 1, length($1) - 3)}' "$1" | sort -n |
        while read -r us; do ((us >= $2)) && echo "$us"; done | sed -n "${3}p")
    [[ -n $ns ]] && echo $((ns - $2)) || echo -
}
events_stop() {
    [[ -n $EV_PID ]] || return 0
    kill "$EV_PID" 2>/dev/null || true
    wait "$EV_PID" 2>/dev/null || true
    EV_PID=
}

# Times from the agent's log, in µs from T0 (lines after the first OFFSET bytes):
# the assignments arrive, the first create, the last start.
agent_marks() { # agent_marks OFFSET T0_US -> "wake first_create last_start creates starts"
    local off=$1 t0=$2 a c s nc ns
    tail -c +"$((off + 1))" "$TMP/agent.log" >"$TMP/agent.slice"
    a=$(jq -r 'select(.msg == "assignments") | .time' "$TMP/agent.slice" 2>/dev/null | head -n1)
    c=$(jq -r 'select(.msg == "container created") | .time' "$TMP/agent.slice" 2>/dev/null | head -n1)
    s=$(jq -r 'select(.msg == "container started") | .time' "$TMP/agent.slice" 2>/dev/null | tail -n1)
    nc=$(jq -r 'select(.msg == "container created") | .time' "$TMP/agent.slice" 2>/dev/null | wc -l)
    ns=$(jq -r 'select(.msg == "container started") | .time' "$TMP/agent.slice" 2>/dev/null | wc -l)
    local out=()
    for x in "$a" "$c" "$s"; do
        if [[ -n $x ]]; then out+=($(($(iso_us "$x") - t0))); else out+=(-); fi
    done
    echo "${out[*]} $nc $ns"
}

# Polls GET /v1/deployments/NAME every POLL_MS until status.running == N.
wait_api_running() { # wait_api_running NAME N TIMEOUT_S -> sets POLLS
    local name=$1 n=$2 until=$(($(now_us) + $3 * 1000000)) t code body
    POLLS=0
    while :; do
        t=$(now_us)
        ((t < until)) || bench_die "$name: not $n running after $3 s: $(cat "$TMP/poll" 2>/dev/null)"
        code=$(curl -sS --max-time 5 --cacert "$CA" -o "$TMP/poll" -w '%{http_code}' \
            -H "Authorization: Bearer $TOKEN" "$API/v1/deployments/$name" 2>/dev/null) || code=000
        POLLS=$((POLLS + 1))
        body=$(<"$TMP/poll")
        if [[ $code == 200 && $body =~ \"running\":\ ?([0-9]+) ]] && ((BASH_REMATCH[1] == n)); then
            return 0
        fi
        nap_ms $((POLL_MS - ($(now_us) - t) / 1000))
    done
}

wait_gone() { # wait_gone TIMEOUT_S: the tenant's containers are off the Engine
    local i
    for ((i = 0; i < $1 * 10; i++)); do
        [[ -z $(docker ps -aq --filter "label=odysseus.tenant=$TENANT_ID") ]] && return 0
        nap_ms 100
    done
    bench_die "the tenant's containers are still on the Engine $1 s after the DELETE"
}

# POST a deployment, wait until it runs: sets ODX_US (API-visible), ENG_US
# (the Nth start event), MARKS (agent log), POLLS.
odx_round() { # odx_round NAME N CPU_MILLICORES MEMORY_MB TIMEOUT_S
    local name=$1 n=$2 t0 t1 off spec a0 d0 c0 k0
    spec=$(jq -nc --arg n "$name" --arg i "$IMAGE" --argjson r "$n" --argjson c "$3" --argjson m "$4" \
        '{name: $n, image: $i, replicas: $r, command: ["sleep", "3600"],
          resources: {cpu_millicores: $c, memory_mb: $m, pids: 64}, writable_paths: ["/tmp"]}')
    TOKEN=$(login "$TENANT_EMAIL" "$TENANT_PASSWORD") # access tokens live 15 minutes
    off=$(stat -c %s "$TMP/agent.log")
    t0=$(now_us)
    events_start "$TMP/events-$name" "$t0"
    a0=$(cpu_ticks "$AGENT_PID") d0=$(cpu_ticks "$DAEMON_PID") c0=$(child_ticks) k0=$(dockerd_ticks)
    t0=$(now_us)
    api POST /v1/deployments "$TOKEN" "$spec"
    want 201 "POST /v1/deployments ($name)"
    wait_api_running "$name" "$n" "$5"
    t1=$(now_us)
    ODX_US=$((t1 - t0))
    # agent, odysseusd, this script's curls (POST + polls), dockerd
    ODX_CPU="$(ticks_ms $(($(cpu_ticks "$AGENT_PID") - a0))) $(ticks_ms $(($(cpu_ticks "$DAEMON_PID") - d0)))"
    ODX_CPU+=" $(ticks_ms $(($(child_ticks) - c0))) $(ticks_ms $(($(dockerd_ticks) - k0)))"
    nap_ms 300 # the last events reach the file
    events_stop
    ENG_US=$(events_nth "$TMP/events-$name" "$t0" "$n")
    MARKS=$(agent_marks "$off" "$t0")
}

odx_delete() { # odx_delete NAME [TIMEOUT_S]: sets DEL_FIRST_US (to the first removal, from the agent's log)
    local off t0 x
    TOKEN=$(login "$TENANT_EMAIL" "$TENANT_PASSWORD")
    off=$(stat -c %s "$TMP/agent.log")
    t0=$(now_us)
    api DELETE "/v1/deployments/$1" "$TOKEN"
    want 204 "DELETE /v1/deployments/$1"
    wait_gone "${2:-120}"
    x=$(tail -c +"$((off + 1))" "$TMP/agent.log" | jq -r 'select(.msg == "container removed") | .time' 2>/dev/null | head -n1)
    DEL_FIRST_US=-
    [[ -z $x ]] || DEL_FIRST_US=$(($(iso_us "$x") - t0))
}

# --- the run -----------------------------------------------------------------
echo "## deployments: $REPLICAS replicas vs $REPLICAS x docker run -d — $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo
echo "machine: $(nproc) CPUs ($(bench_cpu_model)), $(uname -sr)"
echo "engine: Docker $(docker version --format '{{.Server.Version}}' 2>/dev/null), storage $(docker info --format '{{.Driver}}' 2>/dev/null); CLI $(docker version --format '{{.Client.Version}}' 2>/dev/null) at API $DOCKER_API_VERSION"
echo "odysseusd + odysseus-agent: $B (buildtype $BENCH_BUILDTYPE; source $SRC at $SRC_REV), --heartbeat-interval $HEARTBEAT, API polled every $POLL_MS ms"
echo "node: $NODE_CPUS CPUs, $NODE_MEM_MB MiB; $ROUNDS rounds, order alternates (odd rounds: docker first)"
echo "containers already on the engine (not ours): $(docker ps -q | wc -l) running"
echo "load average at start: $(bench_loadavg)"
AGENT_START_INFO=$(proc_info "$AGENT_PID")
DAEMON_START_INFO=$(proc_info "$DAEMON_PID")

# The spec fits the node: the scheduler never over-commits (cpus x 1000 millicores).
CPU_M=100
((REPLICAS * CPU_M <= NODE_CPUS * 1000)) || CPU_M=$((NODE_CPUS * 1000 / REPLICAS))
((CPU_M >= 10)) || bench_die "$REPLICAS replicas of 10 millicores do not fit $NODE_CPUS CPUs"
[[ $CPU_M == 100 ]] || bench_note "cpu_millicores $CPU_M (100 x $REPLICAS does not fit $NODE_CPUS CPUs); the peer keeps --cpus 0.1"

echo
echo "| round | order | docker s | odysseus API s | engine s | odx/docker (API) | odx/docker (engine) | wake s | first create s | last start s | polls |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
PEERS=() ODXS=() ENGS=() RAPI=() CPU_ROWS=()
for ((k = 1; k <= ROUNDS; k++)); do
    if ((k % 2 == 1)); then order="docker, odysseus"; else order="odysseus, docker"; fi
    for side in ${order//,/}; do
        if [[ $side == docker ]]; then
            peer_round "$k"
        else
            odx_round "bench-$k" "$REPLICAS" "$CPU_M" 32 180
            odx_delete "bench-$k"
        fi
        nap_ms 2000 # the engine and the agent settle
    done
    read -r wake first last ncreated nstarted <<<"$MARKS"
    ((ncreated == REPLICAS && nstarted == REPLICAS)) ||
        bench_note "round $k: the agent logged $ncreated creates and $nstarted starts (want $REPLICAS)"
    PEERS+=("$PEER_US") ODXS+=("$ODX_US") ENGS+=("$ENG_US")
    ra=$(ratio "$ODX_US" "$PEER_US")
    re=-
    [[ $ENG_US == - ]] || re=$(ratio "$ENG_US" "$PEER_US")
    [[ $ra == - ]] && RAPI+=(-) || RAPI+=($((10#${ra/./})))
    fmt() { [[ $1 == - ]] && echo - || secs "$1"; }
    read -r p_cli p_dockerd <<<"$PEER_CPU"
    read -r o_agent o_daemon o_poll o_dockerd <<<"$ODX_CPU"
    CPU_ROWS+=("| $k | $p_cli | $p_dockerd | $o_agent | $o_daemon | $o_poll | $o_dockerd |")
    echo "| $k | $order | $(secs "$PEER_US") | $(secs "$ODX_US") | $(fmt "$ENG_US") | $ra | $re | $(fmt "$wake") | $(fmt "$first") | $(fmt "$last") | $POLLS |"
done
mp=$(median "${PEERS[@]}") mo=$(median "${ODXS[@]}") me=$(median "${ENGS[@]}")
echo "| median | | $(secs "$mp") | $(secs "$mo") | $([[ $me == - ]] && echo - || secs "$me") | $(ratio "$mo" "$mp") | $([[ $me == - ]] && echo - || ratio "$me" "$mp") | | | | |"
echo
echo "(wake: the agent logs the new assignments; first create / last start: its log lines" \
    "'container created' / 'container started'; engine: the ${REPLICAS}th start event; all from just before the POST)"
echo
mr=$(median "${RAPI[@]}")
echo "$REPLICAS replicas: $(ratio "$mo" "$mp")× plain docker (goal ≤ 1.2×), median of $ROUNDS rounds" \
    "(ratio of medians; median of per-round ratios $(ratio "$mr" 100)); engine-side $([[ $me == - ]] && echo - || ratio "$me" "$mp")×"
echo
echo "CPU used while each side ran (ms; /proc ticks of $((1000 / HZ)) ms; dockerd serves every client of the shared engine):"
echo
echo "| round | docker: CLI processes | docker: dockerd | odysseus: agent | odysseus: odysseusd | odysseus: curl (POST + polls) | odysseus: dockerd |"
echo "|---|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${CPU_ROWS[@]}"
echo
echo "agent after the rounds: $(proc_info "$AGENT_PID") (at start: $AGENT_START_INFO)"

# --- CPU with BIG containers -----------------------------------------------------------
if ((BIG > 0)); then
    # Fit the node: cpus x 1000 millicores, and at most half its memory.
    BCPU=$((NODE_CPUS * 1000 * 9 / 10 / BIG))
    ((BCPU > 100)) && BCPU=100
    ((BCPU >= 10)) || bench_die "$BIG replicas of 10 millicores do not fit $NODE_CPUS CPUs"
    BMEM=$((NODE_MEM_MB / 2 / BIG))
    ((BMEM > 32)) && BMEM=32
    ((BMEM >= 6)) || bench_die "$BIG replicas of 6 MiB do not fit $NODE_MEM_MB MiB"
    echo
    echo "## $BIG containers on the node: steady-state CPU"
    echo
    echo "deployment bench-big: $BIG replicas of cpu_millicores $BCPU, memory_mb $BMEM (fits $NODE_CPUS CPUs, $NODE_MEM_MB MiB)"
    odx_round bench-big "$BIG" "$BCPU" "$BMEM" 900
    read -r wake first last ncreated nstarted <<<"$MARKS"
    echo "time to $BIG running: API-visible $(secs "$ODX_US") s, engine-side $([[ $ENG_US == - ]] && echo - || secs "$ENG_US") s" \
        "(assignments at $([[ $wake == - ]] && echo - || secs "$wake") s, first create $([[ $first == - ]] && echo - || secs "$first") s," \
        "last start $([[ $last == - ]] && echo - || secs "$last") s)"
    nap_ms $((SETTLE * 1000))

    TIDS=$(ls "/proc/$AGENT_PID/task" | sort -n)
    declare -A T0 TNAME TCPU
    for t in $TIDS; do T0[$t]=$(thread_ns "$AGENT_PID" "$t"); done
    a0=$(cpu_ticks "$AGENT_PID") d0=$(cpu_ticks "$DAEMON_PID")
    k0=0
    [[ -n $DOCKERD_PID ]] && k0=$(cpu_ticks "$DOCKERD_PID")
    w0=$(now_us)
    nap_ms $((STEADY * 1000))
    w1=$(now_us)
    a1=$(cpu_ticks "$AGENT_PID") d1=$(cpu_ticks "$DAEMON_PID")
    k1=0
    [[ -n $DOCKERD_PID ]] && k1=$(cpu_ticks "$DOCKERD_PID")
    win_ms=$(((w1 - w0) / 1000))
    pct() { # pct TICKS -> % of one core over the window
        local x=$(($1 * 1000 * 100000 / HZ / win_ms))
        printf '%d.%03d' $((x / 1000)) $((x % 1000))
    }
    ms_of() { echo $(($1 * 1000 / HZ)); }
    echo "window: $((win_ms / 1000)) s of steady state, $SETTLE s after all ran; CPU from /proc/PID/stat (utime+stime, $HZ ticks/s: ±$((1000 / HZ)) ms)"
    echo
    echo "| process | CPU ms | % of one core |"
    echo "|---|---:|---:|"
    echo "| odysseus-agent | $(ms_of $((a1 - a0))) | $(pct $((a1 - a0))) |"
    echo "| odysseusd | $(ms_of $((d1 - d0))) | $(pct $((d1 - d0))) |"
    [[ -n $DOCKERD_PID ]] && echo "| dockerd (all clients) | $(ms_of $((k1 - k0))) | $(pct $((k1 - k0))) |"
    echo
    # Threads in creation order (src/agent/run.c, reconcile.c): main, converge, events,
    # heartbeat, assignments, renewal, actions.
    names=(main converge events heartbeat assignments renewal actions)
    echo "agent threads (named by creation order; time on a CPU from /proc/PID/task/TID/schedstat):"
    j=0
    for t in $TIDS; do
        d=$(($(thread_ns "$AGENT_PID" "$t") - ${T0[$t]}))
        printf '  tid %s %s: %d.%01d ms\n' "$t" "${names[j]:-?}" $((d / 1000000)) $((d / 100000 % 10))
        TNAME[$t]=${names[j]:-?}
        TCPU[$t]=$d
        j=$((j + 1))
    done

    if [[ $STRACE == 1 ]] && have strace; then
        # A separate window (strace slows the agent): which thread asks the
        # Engine what, so passes can be counted.
        SW=15
        timeout -s INT "$SW" strace -f -p "$AGENT_PID" -tt -e trace=sendto,write -s 200 -o "$TMP/strace.txt" 2>/dev/null || true
        lists=$(grep -c 'GET /v1.41/containers/json' "$TMP/strace.txt" 2>/dev/null || true)
        lists=${lists:-0}
        ltid=$( (grep 'GET /v1.41/containers/json' "$TMP/strace.txt" 2>/dev/null || true) |
            awk '{print $1}' | sort | uniq -c | sort -rn | awk 'NR == 1 {print $2}')
        others=$(grep -oE '"(GET|POST|DELETE|HEAD) /v1\.41/[^ ?"\\]*' "$TMP/strace.txt" 2>/dev/null |
            sed -E 's/^"//; s/[0-9a-f]{64}/{id}/' | sort | uniq -c | awk '{print $1 " " $2 " " $3}' | paste -sd, - | sed 's/,/, /g' || true)
        echo
        echo "strace, $SW s after the window: $lists container lists (2 per pass: passes ≈ $((lists / 2)) in $SW s," \
            "the 5 s safety net), all from tid ${ltid:-?} (${TNAME[${ltid:-0}]:-?}); Engine requests by kind: ${others:-none}"
        if [[ -n $ltid && ${TCPU[$ltid]+x} && $lists -gt 0 ]]; then
            # passes in the CPU window at the rate strace saw
            passes=$((lists * win_ms / 2 / (SW * 1000)))
            if ((passes > 0)); then
                per=$((TCPU[$ltid] / passes / 10000))
                printf 'converge thread: ≈ %d passes in the window: ≈ %d.%02d ms of agent CPU per pass with %d containers\n' \
                    "$passes" $((per / 100)) $((per % 100)) "$BIG"
            fi
        fi
    fi
    hb=
    for t in "${!TNAME[@]}"; do [[ ${TNAME[$t]} == heartbeat ]] && hb=$t; done
    if [[ -n $hb ]]; then
        per=$((TCPU[$hb] * HEARTBEAT / (win_ms / 1000) / 10000))
        printf 'heartbeat thread: ≈ %d.%02d ms per heartbeat (one every %d s, carrying %d containers)\n' \
            $((per / 100)) $((per % 100)) "$HEARTBEAT" "$BIG"
    fi
    echo
    echo "agent after the $BIG: $(proc_info "$AGENT_PID")"
    echo "odysseusd after the $BIG: $(proc_info "$DAEMON_PID") (at start: $DAEMON_START_INFO)"
    t=$(now_us)
    odx_delete bench-big 900
    echo "DELETE of $BIG: first container removed after $([[ $DEL_FIRST_US == - ]] && echo - || secs "$DEL_FIRST_US") s," \
        "all gone from the engine after $(secs $(($(now_us) - t))) s"
fi

# --- after the run ---------------------------------------------------------------------
echo
echo "load average at end: $(bench_loadavg)"
echo "agent at end: $(proc_info "$AGENT_PID"); odysseusd at end: $(proc_info "$DAEMON_PID")"
left=$(docker ps -aq --filter "label=odysseus.tenant=$TENANT_ID" | wc -l)
stop_agent
stop_daemon
echo "exit status after SIGTERM: agent $AGENT_RC, odysseusd $DAEMON_RC; containers of the tenant left before cleanup: $left"
for f in agent odysseusd; do
    warns=$(grep -c '"level":"warn"' "$TMP/$f.log" || true)
    errors=$(grep -c '"level":"error"' "$TMP/$f.log" || true)
    echo "$f log: $warns warn, $errors error line(s)"
    if ((warns + errors)); then
        grep -E '"level":"(warn|error)"' "$TMP/$f.log" | jq -c 'del(.time)' 2>/dev/null |
            sort | uniq -c | sort -rn | head -n 5 | sed 's/^/  /'
    fi
done
