#!/usr/bin/env bash
# The aiops performance suite: builds the release binaries, runs every scenario against real
# servers on this machine, and prints the results table of docs/BENCHMARKS.md ("Performance").
#
#   bench/run.sh                      # everything, about 15 minutes on 2 cores
#   bench/run.sh http cycle           # some sections: http, ingest, logs, cycle, detect
#
# Sections
#   http    instrumented GET /health against the same server with --no-telemetry in alternating
#           pairs (wrk -t2 -c64; the order flips every round so that a drifting machine favours
#           neither), the median of the pairs' ratios; then every request's span counted in the
#           SQLite file
#   ingest  OTLP/HTTP protobuf, 1,000-span requests from several connections at a target rate
#           into SQLite; drops from /metrics, stored spans counted in the file, RSS sampled
#           from /proc/<pid>/status during and after (this is also the memory scenario)
#   logs    OTLP/HTTP protobuf log exports, 1,000-record requests from several connections as
#           fast as the server takes them into SQLite (429s retried); drops from /metrics,
#           stored records counted in the file
#   cycle   criterion bench of Engine::run_cycle, 50 endpoints, 10k / 100k / 1M spans an hour
#   detect  time from injecting a 2 s delay on /payment (10 req/s of traffic, default
#           settings) to the incident being listed by GET /aiops/incidents
#
# Knobs (environment): BENCH_OUT (logs and results; default /tmp/aiops-bench-<time>),
# CARGO_TARGET_DIR, BENCH_PORT (first port used, default 5100), ROUNDS (on/off pairs, 9),
# WRK_SECS (5), INGEST_RATE (spans/s, 210000), INGEST_SPANS (10000000), INGEST_CONNECTIONS (4),
# DETECT_TRIALS (5), LOG_RECORDS (2000000), LOG_CONNECTIONS (4).
#
# Needs: cargo, curl, python3 (its sqlite3 module reads the span counts), wrk (installed with
# apt-get when missing and running as root). Measure on a quiet machine: the script prints the
# load average before and after, and every figure is the median of repeated runs.

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${BENCH_OUT:-/tmp/aiops-bench-$(date +%Y%m%d-%H%M%S)}
PORT=${BENCH_PORT:-5100}
ROUNDS=${ROUNDS:-9}
WRK_SECS=${WRK_SECS:-5}
# 5% above the 200,000 spans/s target: a paced generator lands a hair under its rate.
INGEST_RATE=${INGEST_RATE:-210000}
INGEST_SPANS=${INGEST_SPANS:-10000000}
INGEST_CONNECTIONS=${INGEST_CONNECTIONS:-4}
DETECT_TRIALS=${DETECT_TRIALS:-5}
LOG_RECORDS=${LOG_RECORDS:-2000000}
LOG_CONNECTIONS=${LOG_CONNECTIONS:-4}
AIOPS=$TARGET/release/aiops
LOADGEN=$TARGET/release/aiops-loadgen
SECTIONS=("$@")
[ ${#SECTIONS[@]} -gt 0 ] || SECTIONS=(http ingest logs cycle detect)
mkdir -p "$OUT"
RESULTS=$OUT/results.md
ROWS=()
SERVER_PIDS=()

log() { printf '\n== %s\n' "$*" >&2; }
wants() { local s; for s in "${SECTIONS[@]}"; do [ "$s" = "$1" ] && return 0; done; return 1; }
median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }
result_field() { # result_field FILE FIELD: a field of the RESULT line a loadgen command printed
    python3 -c 'import json,sys
line=[l for l in open(sys.argv[1]) if l.startswith("RESULT ")][-1]
print(json.loads(line[7:])[sys.argv[2]])' "$1" "$2"
}
verdict() { python3 -c 'import sys; print("met" if eval(sys.argv[1]) else "**missed**")' "$1"; }
fmt() { python3 -c 'import sys; print(f"{float(sys.argv[1]):,.{int(sys.argv[2])}f}")' "$1" "${2:-0}"; }

cleanup() {
    local pid
    for pid in "${SERVER_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT

# start_server NAME PORT [aiops options...]: a fresh database under $OUT; sets SERVER_PID.
start_server() {
    local name=$1 port=$2
    shift 2
    rm -f "$OUT/$name.db" "$OUT/$name.db-wal" "$OUT/$name.db-shm"
    RUST_LOG=${RUST_LOG:-warn} "$AIOPS" --bind "127.0.0.1:$port" --db "$OUT/$name.db" "$@" \
        >"$OUT/$name.log" 2>&1 &
    SERVER_PID=$!
    SERVER_PIDS+=("$SERVER_PID")
    # /aiops/* is never monitored, so waiting for it adds no span.
    for _ in $(seq 300); do
        curl -fsS "http://127.0.0.1:$port/aiops/metrics" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "the $name server did not start; see $OUT/$name.log" >&2
    exit 1
}

# stop_server PID: SIGTERM, which drains the span queue into SQLite before exiting.
stop_server() {
    kill -TERM "$1"
    wait "$1" || true
}

# count_spans DB [OPERATION]: spans stored in the SQLite file (of one operation). Spans are
# stored in binary chunks (crates/storage-sqlite/src/chunk.rs); a per-operation count reads each
# span's flags and endpoint id from the chunks.
count_spans() {
    python3 - "$1" "${2:-}" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
if not sys.argv[2]:
    print(db.execute("SELECT coalesce(sum(count), 0) FROM span_chunks").fetchone()[0])
    sys.exit()
wanted = {row[0] for row in db.execute("SELECT id FROM endpoints WHERE operation = ?", (sys.argv[2],))}

def varint(blob, at):
    value = shift = 0
    while True:
        byte = blob[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at

count = 0
for (blob,) in db.execute("SELECT spans FROM span_chunks"):
    assert blob[0] in (1, 2), "unknown chunk version"
    _, at = varint(blob, 1)  # base start
    while at < len(blob):
        flags = blob[at]
        endpoint, at = varint(blob, at + 1)
        count += endpoint in wanted
        if flags & 2:  # HTTP status
            _, at = varint(blob, at)
        _, at = varint(blob, at)  # start delta
        _, at = varint(blob, at)  # duration
        at += 16 + 8 + (8 if flags & 1 else 0)  # trace, span and parent ids
        if not flags & 0x80:  # attributes, unless the previous span's are repeated
            length, at = varint(blob, at)
            at += length
print(count)
PY
}

rss_kib() { awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"; }

machine() {
    local cpu mem
    cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
    mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
    echo "Machine: $(nproc) cores ($cpu), $mem RAM, Linux $(uname -r), $(rustc -V | cut -d' ' -f1-2)," \
        "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)."
}

setup() {
    if ! command -v wrk >/dev/null; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            apt-get install -y wrk >/dev/null || { apt-get update >/dev/null && apt-get install -y wrk >/dev/null; }
        else
            echo "wrk is needed: apt-get install -y wrk" >&2
            exit 1
        fi
    fi
    for tool in curl python3; do
        command -v "$tool" >/dev/null || { echo "$tool is needed" >&2; exit 1; }
    done
    log "Building release binaries (target: $TARGET)"
    (cd "$ROOT" && cargo build --release -p aiops-server -p aiops-loadgen)
}

# wrk_run URL LABEL: one wrk run; prints "requests_per_sec total_requests non_2xx".
wrk_run() {
    local file=$OUT/wrk-$2.txt
    wrk -t2 -c64 -d"${WRK_SECS}s" "$1" >"$file"
    python3 - "$file" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
rps = re.search(r"Requests/sec:\s+([\d.]+)", text).group(1)
total = re.search(r"(\d+) requests in", text).group(1)
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
errors = re.search(r"Socket errors: (.*)", text)
print(rps, total, bad.group(1) if bad else 0, "errors:" + (errors.group(1).replace(" ", "") if errors else "none"))
PY
}

# cpu_ticks PID: user + system CPU time the process has used, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# cpu_per_request PID TICKS_BEFORE WRK_LINE: microseconds of the process's CPU per request
# wrk completed since TICKS_BEFORE.
cpu_per_request() {
    python3 -c 'import sys; ticks = int(sys.argv[2]) - int(sys.argv[1]); print(ticks / int(sys.argv[3]) * 1e6 / max(int(sys.argv[4]), 1))' \
        "$2" "$(cpu_ticks "$1")" "$(getconf CLK_TCK)" "$(echo "$3" | cut -d' ' -f2)"
}

# http_run on|off ROUND: one wrk run against that server of section_http, appended to its lists.
http_run() {
    local side=$1 round=$2 pid port before line
    if [ "$side" = on ]; then pid=$on_pid port=$on_port; else pid=$off_pid port=$off_port; fi
    before=$(cpu_ticks "$pid")
    line=$(wrk_run "http://127.0.0.1:$port/health" "$side-$round")
    echo "  round $round telemetry $side: $line" >&2
    if [ "$side" = on ]; then
        on_cpu+=("$(cpu_per_request "$pid" "$before" "$line")")
        on+=("${line%% *}")
        total_on=$((total_on + $(echo "$line" | cut -d' ' -f2)))
        bad=$((bad + $(echo "$line" | cut -d' ' -f3)))
        "$LOADGEN" drain --url "http://127.0.0.1:$port" >"$OUT/http-drain-$round.txt"
    else
        off_cpu+=("$(cpu_per_request "$pid" "$before" "$line")")
        off+=("${line%% *}")
    fi
}

section_http() {
    log "HTTP: instrumented GET /health vs --no-telemetry, $ROUNDS alternating pairs of ${WRK_SECS}s"
    local on_port=$PORT off_port=$((PORT + 1)) on_pid off_pid
    start_server http-on "$on_port" --warmup-requests 0
    on_pid=$SERVER_PID
    start_server http-off "$off_port" --warmup-requests 0 --no-telemetry
    off_pid=$SERVER_PID
    # A warm-up each, not counted: connection pools, page cache, and on the instrumented
    # server the trace buffer, live windows and database filled to their steady state (the
    # first spans cost page faults that steady traffic does not). Its spans are counted now and
    # subtracted below.
    wrk -t2 -c64 -d3s "http://127.0.0.1:$on_port/health" >/dev/null
    wrk -t2 -c64 -d3s "http://127.0.0.1:$off_port/health" >/dev/null
    "$LOADGEN" drain --url "http://127.0.0.1:$on_port" >"$OUT/http-drain-warmup.txt"
    local warmup_spans
    warmup_spans=$(count_spans "$OUT/http-on.db" /health)
    local on=() off=() pairs=() on_cpu=() off_cpu=() total_on=0 bad=0 round side
    for round in $(seq "$ROUNDS"); do
        # on, off in odd rounds; off, on in even ones.
        for side in $( ((round % 2)) && echo "on off" || echo "off on"); do
            http_run "$side" "$round"
        done
        pairs+=("$(python3 -c "print(100 * ${on[-1]} / ${off[-1]})")")
    done
    local dropped
    dropped=$(result_field "$OUT/http-drain-$ROUNDS.txt" dropped)
    stop_server "$on_pid"
    stop_server "$off_pid"
    local stored median_on median_off ratio
    stored=$(($(count_spans "$OUT/http-on.db" /health) - warmup_spans))
    median_on=$(median "${on[@]}")
    median_off=$(median "${off[@]}")
    ratio=$(median "${pairs[@]}")
    echo "  spans stored for /health: $stored; requests wrk completed: $total_on; dropped: $dropped; non-2xx: $bad" >&2
    local pair_list cpu
    pair_list=$(printf '%s\n' "${pairs[@]}" | python3 -c 'import sys; print(", ".join(f"{float(x):.1f}%" for x in sys.stdin))')
    cpu="server CPU per request: on $(fmt "$(median "${on_cpu[@]}")" 1) µs, off $(fmt "$(median "${off_cpu[@]}")" 1) µs"
    ROWS+=("| 1 | Instrumentation overhead (GET /health, wrk -t2 -c64, ${ROUNDS} alternating pairs of ${WRK_SECS}s) | median of the pairs' ratios **$(fmt "$ratio" 1)%** (pairs: $pair_list); medians on $(fmt "$median_on") req/s, off $(fmt "$median_off") req/s; $cpu | >= 90% | $(verdict "$ratio >= 90") |")
    ROWS+=("| 2 | HTTP throughput, instrumented /health, every span stored | **$(fmt "$median_on") req/s**; $(fmt "$stored") spans stored for $(fmt "$total_on") requests completed, $dropped dropped | >= 30,000 req/s, all stored | $(verdict "$median_on >= 30000 and $stored >= $total_on and $dropped == 0") |")
}

section_ingest() {
    log "Ingest: $INGEST_SPANS spans at $INGEST_RATE spans/s over $INGEST_CONNECTIONS connections"
    local port=$((PORT + 2)) pid sampler
    start_server ingest "$port" --warmup-requests 0
    pid=$SERVER_PID
    (while kill -0 "$pid" 2>/dev/null; do
        echo "$(date +%s) $(rss_kib "$pid" VmRSS)"
        sleep 1
    done) >"$OUT/ingest-rss.txt" 2>/dev/null &
    sampler=$!
    "$LOADGEN" ingest --url "http://127.0.0.1:$port" --rate "$INGEST_RATE" \
        --connections "$INGEST_CONNECTIONS" --total-spans "$INGEST_SPANS" --duration 3600s \
        --progress 5s | tee "$OUT/ingest.txt" >&2
    "$LOADGEN" drain --url "http://127.0.0.1:$port" --timeout 600s | tee "$OUT/ingest-drain.txt" >&2
    # Let one analysis cycle and the allocator settle before reading memory.
    sleep 6
    local rss hwm
    rss=$(rss_kib "$pid" VmRSS)
    hwm=$(rss_kib "$pid" VmHWM)
    kill "$sampler" 2>/dev/null || true
    curl -fsS "http://127.0.0.1:$port/metrics" >"$OUT/ingest-metrics.txt"
    stop_server "$pid"
    local rate accepted dropped stored warnings
    rate=$(result_field "$OUT/ingest.txt" spans_per_sec)
    accepted=$(result_field "$OUT/ingest.txt" spans_accepted)
    warnings=$(result_field "$OUT/ingest.txt" not_stored_warnings)
    dropped=$(result_field "$OUT/ingest-drain.txt" dropped)
    stored=$(count_spans "$OUT/ingest.db")
    echo "  stored spans: $stored of $accepted accepted; RSS after: $rss KiB, peak $hwm KiB" >&2
    ROWS+=("| 3 | OTLP ingest, protobuf, 1,000-span requests, $INGEST_CONNECTIONS connections, target $(fmt "$INGEST_RATE") spans/s | **$(fmt "$rate") spans/s** sustained; $(fmt "$stored") of $(fmt "$accepted") stored, $dropped dropped | >= 200,000 spans/s, none dropped, all queryable | $(verdict "$rate >= 200000 and $dropped == 0 and $warnings == 0 and $stored == $accepted") |")
    ROWS+=("| 6 | Memory after $(fmt "$INGEST_SPANS") spans ingested (default retention 24 h) | **$(fmt "$((rss / 1024))") MB** VmRSS after draining (peak VmHWM $(fmt "$((hwm / 1024))") MB) | < 200 MB, every queue bounded | $(verdict "$rss < 200 * 1024") |")
    rm -f "$OUT/ingest.db" "$OUT/ingest.db-wal" "$OUT/ingest.db-shm"
}

section_logs() {
    log "Log ingest: $LOG_RECORDS records as fast as taken, over $LOG_CONNECTIONS connections"
    local port=$((PORT + 4)) pid
    start_server logs "$port" --warmup-requests 0 --no-demo
    pid=$SERVER_PID
    "$LOADGEN" ingest --signal logs --url "http://127.0.0.1:$port" --rate 0 \
        --connections "$LOG_CONNECTIONS" --total-spans "$LOG_RECORDS" --duration 3600s \
        --progress 5s | tee "$OUT/logs.txt" >&2
    "$LOADGEN" drain --url "http://127.0.0.1:$port" --timeout 600s | tee "$OUT/logs-drain.txt" >&2
    stop_server "$pid"
    local rate accepted dropped stored throttled
    rate=$(result_field "$OUT/logs.txt" spans_per_sec)
    accepted=$(result_field "$OUT/logs.txt" spans_accepted)
    throttled=$(result_field "$OUT/logs.txt" throttled)
    dropped=$(result_field "$OUT/logs-drain.txt" log_records_dropped)
    stored=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute("SELECT count(*) FROM logs").fetchone()[0])' "$OUT/logs.db")
    echo "  stored log records: $stored of $accepted accepted; 429s retried: $throttled" >&2
    ROWS+=("| 7 | OTLP log ingest, protobuf, 1,000-record requests, $LOG_CONNECTIONS connections, as fast as taken | **$(fmt "$rate") records/s** sustained; $(fmt "$stored") of $(fmt "$accepted") stored, $(fmt "$dropped") dropped ($(fmt "$throttled") requests answered 429 and retried) | none dropped, all queryable | $(verdict "$dropped == 0 and $stored == $accepted") |")
    rm -f "$OUT/logs.db" "$OUT/logs.db-wal" "$OUT/logs.db-shm"
}

section_cycle() {
    log "Analysis cycle: cargo bench -p aiops-engine --bench cycle"
    (cd "$ROOT" && cargo bench -p aiops-engine --bench cycle -- --noplot) | tee "$OUT/cycle.txt" >&2
    local scenario n ms cells=() lo hi
    for scenario in healthy incident; do
        local row=()
        for n in 10000 100000 1000000; do
            ms=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["median"]["point_estimate"] / 1e6)' \
                "$TARGET/criterion/run_cycle/$scenario/$n/new/estimates.json")
            row+=("$ms")
        done
        lo=${row[0]}
        hi=${row[2]}
        cells+=("$scenario: $(fmt "${row[0]}" 2) / $(fmt "${row[1]}" 2) / $(fmt "${row[2]}" 2) ms ($(fmt "$(python3 -c "print($hi / $lo)")" 1)x)")
        [ "$scenario" = healthy ] && local healthy_ok
        [ "$scenario" = healthy ] && healthy_ok=$(verdict "$hi <= 20 and $hi <= 2 * $lo")
        [ "$scenario" = incident ] && local incident_ok
        [ "$scenario" = incident ] && incident_ok=$(verdict "$hi <= 20 and $hi <= 2 * $lo")
    done
    # The incident scenario is stricter than the target: an incident opens at 1M only, so its
    # ratio compares a cycle with root cause analysis against cycles without.
    ROWS+=("| 4 | Analysis cycle (Engine::run_cycle, 50 endpoints), 10k / 100k / 1M spans in the last hour, median | ${cells[0]}; ${cells[1]} | <= 2x from 10k to 1M, <= 20 ms at 1M | healthy (the target's scenario) $healthy_ok; incident (root cause analysis at 1M only) $incident_ok |")
}

section_detect() {
    local interval
    interval=$("$AIOPS" --help | grep -A1 -- '--analysis-interval' | grep -o 'default: [0-9.]*s' | grep -o '[0-9.]*' || echo 5)
    log "Time to detect: $DETECT_TRIALS trials, 2 s delay on /payment, 10 req/s, default interval ${interval}s"
    local port=$((PORT + 3)) trial seconds=() settle value
    for trial in $(seq "$DETECT_TRIALS"); do
        start_server detect "$port"
        # A random settling time puts the injection at a random point of the analysis interval.
        settle=$(python3 -c "import random; print(round(20 + random.uniform(0, $interval), 2))")
        "$LOADGEN" detect --url "http://127.0.0.1:$port" --rate 10 --path /payment \
            --endpoint /payment --delay-ms 2000 --settle "${settle}s" | tee "$OUT/detect-$trial.txt" >&2
        stop_server "$SERVER_PID"
        if [ "$(result_field "$OUT/detect-$trial.txt" detected)" = True ]; then
            value=$(result_field "$OUT/detect-$trial.txt" seconds)
        else
            value=999
        fi
        seconds+=("$value")
    done
    local med worst budget
    med=$(median "${seconds[@]}")
    worst=$(python3 -c "import sys; print(max(float(x) for x in sys.argv[1:]))" "${seconds[@]}")
    budget=$(python3 -c "print($interval + 2)")
    ROWS+=("| 5 | Time to detect a 2 s delay on /payment at 10 req/s (default interval ${interval} s), $DETECT_TRIALS trials | median **$(fmt "$med" 1) s**, worst $(fmt "$worst" 1) s (all: ${seconds[*]}) | <= interval + 2 s = $(fmt "$budget" 0) s | $(verdict "$worst <= $budget") |")
}

main() {
    setup
    local header
    header=$(machine)
    echo "$header" >&2
    wants http && section_http
    wants ingest && section_ingest
    wants logs && section_logs
    wants cycle && section_cycle
    wants detect && section_detect
    {
        echo "$header"
        echo
        echo "| # | scenario | measured | target | result |"
        echo "|---|---|---|---|---|"
        printf '%s\n' "${ROWS[@]}" | sort -t'|' -k2,2n
        echo
        echo "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). Logs: $OUT."
    } >"$RESULTS"
    echo
    cat "$RESULTS"
}

main
