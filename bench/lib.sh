# shellcheck shell=bash
# The benchmark scripts' shared setup. Sourced, never run:
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   bench_init NAME [DEFAULT_BUILD_DIR]
#
# bench_init NAME [DIR]   strict mode; ROOT (the repository) and cd there;
#                         BENCH_NAME for messages; BUILD_DIR defaults to DIR
#                         (build-release)
# bench_die MSG...        "NAME: MSG" on stderr, exit 1
# bench_note MSG...       "NAME: MSG" on stderr
# bench_build TARGET...   meson setup $BUILD_DIR --buildtype=release unless it
#                         is configured, then ninja TARGET...; on failure the
#                         build's output goes to stderr and the script dies
# bench_buildtype         sets BENCH_BUILDTYPE ('unknown' when unreadable) and
#                         warns when it is not release
# bench_tmpdir TEMPLATE STOP [DIR]
#                         TMP = DIR (made if missing) or a new mktemp -d
#                         TEMPLATE; at exit the command STOP runs, then TMP is
#                         removed unless KEEP_TMP=1 or the run failed;
#                         SIGINT exits 130, SIGTERM 143
# bench_stop_pid PID SECS SIGTERM, SIGKILL after SECS; BENCH_STOP_RC = status
# bench_pick_port VAR [LOW] a free loopback port from LOW (10000) up to the
#                         ephemeral range, not handed out before
# bench_machine           "uname -srm, N CPUs, CPU model"
# bench_cpu_model, bench_commit (short HEAD or ?), bench_loadavg (1, 5, 15 min)
# bench_header [EXTRA]    "NAME: machine, build DIR (type), commit C[, EXTRA]"

bench_init() {
    set -euo pipefail
    BENCH_NAME=$1
    BUILD_DIR=${BUILD_DIR:-${2:-build-release}}
    ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    cd "$ROOT"
}

bench_die() { echo "$BENCH_NAME: $*" >&2; exit 1; }
bench_note() { echo "$BENCH_NAME: $*" >&2; }

bench_build() {
    local out
    [[ -f $BUILD_DIR/build.ninja ]] || meson setup "$BUILD_DIR" --buildtype=release >/dev/null
    out=$(ninja -C "$BUILD_DIR" "$@" 2>&1) ||
        { printf '%s\n' "$out" >&2; bench_die "building $BUILD_DIR failed"; }
}

# Read from the file meson writes, so neither meson nor jq has to run.
bench_buildtype() {
    BENCH_BUILDTYPE=$(python3 -c 'import json, sys
print({o["name"]: o["value"] for o in json.load(open(sys.argv[1]))}["buildtype"])' \
        "$BUILD_DIR/meson-info/intro-buildoptions.json" 2>/dev/null) || BENCH_BUILDTYPE=unknown
    [[ $BENCH_BUILDTYPE == release ]] ||
        bench_note "warning: $BUILD_DIR is buildtype '$BENCH_BUILDTYPE', not release"
}

bench_tmpdir() {
    BENCH_STOP=$2
    if [[ -n ${3-} ]]; then
        TMP=$3
        mkdir -p "$TMP"
    else
        TMP=$(mktemp -d "$1")
    fi
    trap bench_exit_ EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# The EXIT trap: a failed run keeps its temp dir, for the logs in it.
bench_exit_() {
    local rc=$?
    trap - EXIT INT TERM
    $BENCH_STOP
    if [[ ${KEEP_TMP:-0} == 1 || $rc != 0 ]]; then
        bench_note "logs and data kept in $TMP"
    else
        rm -rf -- "$TMP"
    fi
    exit "$rc"
}

# shellcheck disable=SC2034 # BENCH_STOP_RC is read by the caller
bench_stop_pid() {
    local pid=$1 i
    BENCH_STOP_RC=0
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < $2 * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        bench_note "process $pid ignored SIGTERM for $2 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || BENCH_STOP_RC=$?
}

# Ports come from below the ephemeral range: a port in it can be taken by any
# outgoing connection on this (shared) machine before we bind it.
BENCH_PICKED=" "
bench_port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
bench_pick_port() {
    local low=${2:-10000} high p i
    high=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    ((high > low + 1000)) || high=32768
    for ((i = 0; i < 200; i++)); do
        p=$((low + RANDOM % (high - low)))
        [[ $BENCH_PICKED == *" $p "* ]] && continue
        bench_port_in_use "$p" && continue
        BENCH_PICKED+="$p "
        printf -v "$1" '%s' "$p"
        return 0
    done
    bench_die "no free loopback port found"
}

bench_cpu_model() { sed -n '/^model name/{s/^model name[[:space:]]*: //p;q}' /proc/cpuinfo; }
bench_commit() { git rev-parse --short HEAD 2>/dev/null || echo '?'; }
bench_loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
bench_machine() { echo "$(uname -srm), $(nproc) CPUs, $(bench_cpu_model)"; }
bench_header() {
    echo "$BENCH_NAME: $(bench_machine), build $BUILD_DIR ($BENCH_BUILDTYPE), commit $(bench_commit)${1:+, $1}"
}
