#!/usr/bin/env bash
# The aiops reliability suite: hostile conditions against the release binary on this machine,
# with the figures docs/BENCHMARKS.md ("Reliability") quotes.
#
#   bench/reliability.sh                  # everything, about 3 minutes on 2 cores
#   bench/reliability.sh overload slow    # some sections: overload, sdk, crash, slow, names
#
# Sections
#   overload  OTLP exporters (aiops-loadgen, which retries 429 after Retry-After as exporters
#             do) at full speed into a small span queue while another process holds the
#             database for 5 s: acknowledged spans against spans in the file once stopped
#   sdk       services instrumented with the real OpenTelemetry SDK (batch span processor,
#             OTLP/HTTP exporter with its own retries of 429/503 after Retry-After), 4 processes
#             of 3 services each creating 20,000 spans/s (240,000 in all, more than the two
#             cores decode and store) for 20 s in exports of 2,048 spans, into a 5,000-span
#             queue and then into the default 65,536: spans the exporters had acknowledged
#             against spans stored, spans the SDK dropped itself (after its retries, or from its
#             full batch queue), and the acknowledged rate against the writer's (spans written
#             per second from /metrics, and in the seconds its queue never emptied)
#   crash     the same load, the server killed with SIGKILL mid-run and restarted: acknowledged
#             spans missing from the file (at most the last flush interval's)
#   slow      1,500 clients that send a request head and a trickle of body, then stall: p50 and
#             p99 of GET /healthz and GET /health meanwhile, RSS, and whether the stalled
#             uploads are cut (408) by the body read timeout
#   names     OTLP spans with 1,000,000 distinct operation names, 200,000 at a time, each lot
#             purged by the next retention sweep (--retention 1m): RSS, /metrics size and the
#             endpoints table's rows after each lot and after its purge, and the folded-series
#             counter
#
# Knobs (environment): BENCH_OUT (default /tmp/aiops-reliability-<time>), CARGO_TARGET_DIR,
# BENCH_PROFILE (release, or debug to try the suite quickly; its figures are not comparable).
# Needs: cargo, curl, python3 (sqlite3 reads the span counts; sockets make the slow clients).

set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${BENCH_OUT:-/tmp/aiops-reliability-$(date +%Y%m%d-%H%M%S)}
SECTIONS=${*:-overload sdk crash slow names}
mkdir -p "$OUT"
cd "$ROOT"
PROFILE=${BENCH_PROFILE:-release}
if [ "$PROFILE" = release ]; then
  cargo build --release --quiet -p aiops-server -p aiops-loadgen
else
  cargo build --quiet -p aiops-server -p aiops-loadgen
fi
AIOPS="$TARGET/$PROFILE/aiops"
LOADGEN="$TARGET/$PROFILE/aiops-loadgen"
SERVER_PID=""
PORT=""
trap '[ -n "$SERVER_PID" ] && kill -9 "$SERVER_PID" 2>/dev/null; true' EXIT

# start NAME ARGS...: starts the server on a free port with its database in $OUT/NAME.db.
start() {
  local name=$1; shift
  RUST_LOG=info "$AIOPS" --bind 127.0.0.1:0 --db "$OUT/$name.db" --no-demo "$@" \
    >> "$OUT/$name.log" 2>&1 &
  SERVER_PID=$!
  PORT=""
  for _ in $(seq 1 200); do
    PORT=$(sed -n 's/.*address=127.0.0.1:\([0-9]*\) .*Listening\..*/\1/p' "$OUT/$name.log" | tail -1)
    [ -n "$PORT" ] && return 0
    sleep 0.05
  done
  echo "error: the server did not start"; cat "$OUT/$name.log"; exit 1
}

stop() {
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || true; SERVER_PID=""
}

count_spans() {
  python3 - "$1" <<'PY'
import sqlite3, sys
db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
print(db.execute("SELECT coalesce(sum(count), 0) FROM span_chunks").fetchone()[0])
PY
}

metric() {  # metric NAME: its value in /metrics
  curl -s "http://127.0.0.1:$PORT/metrics" | awk -v name="$1" '$1 == name { print $2 }'
}

accepted_of() {  # the spans a loadgen run reported accepted
  sed -n 's/^RESULT //p' "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["spans_accepted"])'
}

for section in $SECTIONS; do
case $section in
overload)
  echo "== overload: exporters at full speed, a 20,000-span queue, the database held for 5 s"
  rm -f "$OUT"/overload.db*
  start overload --span-queue-capacity 20000
  ( sleep 4; python3 - "$OUT/overload.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
db.execute("BEGIN EXCLUSIVE")
time.sleep(5)
db.execute("ROLLBACK")
PY
  ) &
  locker=$!
  "$LOADGEN" ingest --url "http://127.0.0.1:$PORT" --rate 0 --connections 8 \
    --spans-per-request 1000 --duration 15s | tee "$OUT/overload.txt"
  wait "$locker"
  refused=$(metric 'aiops_ingest_refused_requests_total{reason="queue_full"}')
  dropped=$(metric aiops_spans_dropped_total)
  stop
  accepted=$(accepted_of "$OUT/overload.txt")
  stored=$(count_spans "$OUT/overload.db")
  echo "overload: acknowledged $accepted, stored $stored, lost $((accepted - stored)); 429 answers $refused; dropped $dropped"
  ;;
sdk)
  for queue in 5000 65536; do
  echo "== sdk: OpenTelemetry SDK exporters, 240,000 spans/s offered into a $queue-span queue"
  rm -f "$OUT"/sdk-$queue.db*
  start sdk-$queue --span-queue-capacity $queue
  started=$(date +%s.%N)
  pids=()
  for process in 0 1 2 3; do
    "$LOADGEN" sdk --url "http://127.0.0.1:$PORT" --services 3 --service-prefix "sdk-$process" \
      --rate 20000 --duration 20s --queue-size 16384 --batch-size 2048 > "$OUT/sdk-$queue-$process.txt" 2>&1 &
    pids+=($!)
  done
  # Every second while the exporters send: spans written so far, the queue's depth, 429s.
  ( for _ in $(seq 1 25); do
      echo "$(metric aiops_spans_written_total) $(metric aiops_span_queue_depth) $(metric 'aiops_ingest_refused_requests_total{reason="queue_full"}')"
      sleep 1
    done ) > "$OUT/sdk-$queue-writer.txt"
  for pid in "${pids[@]}"; do wait "$pid"; done
  finished=$(date +%s.%N)
  refused=$(metric 'aiops_ingest_refused_requests_total{reason="queue_full"}')
  dropped=$(metric aiops_spans_dropped_total)
  stop
  stored=$(count_spans "$OUT/sdk-$queue.db")
  python3 - "$OUT" "$queue" "$stored" "$refused" "$dropped" "$started" "$finished" <<'PY'
import json, statistics, sys
out, queue, stored, refused, dropped = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
seconds = float(sys.argv[7]) - float(sys.argv[6])
total = {}
for process in range(4):
    for line in open(f"{out}/sdk-{queue}-{process}.txt"):
        if line.startswith("RESULT "):
            for key, value in json.loads(line[7:]).items():
                if isinstance(value, int):
                    total[key] = total.get(key, 0) + value
acknowledged = total["spans_acknowledged"]
print(f"sdk {queue}: created {total['spans_created']}, acknowledged {acknowledged}, stored {stored}, "
      f"lost acknowledged {max(acknowledged - stored, 0)}; 429 answers {refused}; dropped by the server {dropped}")
print(f"sdk {queue}: not acknowledged: dropped by the SDK after its retries {total['spans_failed_after_retries']} "
      f"({total['exports_failed']} exports), dropped by its full batch queue {total['spans_dropped_by_queue']}, "
      f"exports unsettled at exit {total['spans_unsettled']}")
samples = [[float(value) for value in line.split()] for line in open(f"{out}/sdk-{queue}-writer.txt") if len(line.split()) == 3]
rates = [(b[0] - a[0], a[1] > 0 and b[1] > 0, b[2] > a[2]) for a, b in zip(samples, samples[1:])]
sending = [rate for rate, _, _ in rates[:20]]
busy = [rate for rate, backed_up, _ in rates if backed_up]
refusing = sum(1 for _, _, refused_then in rates if refused_then)
print(f"sdk {queue}: acknowledged {acknowledged / seconds:.0f} spans/s over {seconds:.1f} s (the exporters' "
      f"tail included); written {statistics.mean(sending):.0f} spans/s while they sent; the writer "
      + (f"{statistics.median(busy):.0f} spans/s in the {len(busy)} seconds its queue never emptied"
         if busy else "never backed up (its queue emptied every second)")
      + f"; 429s in {refusing} of {len(rates)} seconds")
PY
  done
  ;;
crash)
  echo "== crash: SIGKILL under load"
  rm -f "$OUT"/crash.db*
  start crash
  "$LOADGEN" ingest --url "http://127.0.0.1:$PORT" --rate 100000 --connections 4 \
    --spans-per-request 1000 --duration 6s > "$OUT/crash.txt" 2>&1 &
  loadgen=$!
  sleep 4
  kill -9 "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
  wait "$loadgen" || true
  accepted=$(accepted_of "$OUT/crash.txt")
  rm -f "$OUT/crash.db.lock"
  start crash
  stop
  stored=$(count_spans "$OUT/crash.db")
  echo "crash: acknowledged $accepted, stored $stored, lost $((accepted - stored)) (at 100,000 spans/s, 100 ms of traffic is 10,000 spans)"
  ;;
slow)
  echo "== slow: 1,500 stalled uploads"
  rm -f "$OUT"/slow.db*
  start slow --body-read-timeout 20s
  rss_before=$(metric process_resident_memory_bytes)
  python3 - "$PORT" <<'PY' | tee "$OUT/slow.txt"
import socket, sys, time, statistics, urllib.request
port = int(sys.argv[1])
clients = []
for _ in range(1500):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
              b"Content-Length: 7000000\r\n\r\n" + b"\n" * 65536)
    clients.append(s)
def timed(path):
    started = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as answer:
        answer.read()
    return (time.perf_counter() - started) * 1e3
for path in ["/healthz", "/readyz", "/metrics"]:
    samples = sorted(timed(path) for _ in range(200))
    print(f"slow: {path} with 1500 stalled uploads open: p50 {statistics.median(samples):.1f} ms, p99 {samples[int(len(samples) * 0.99) - 1]:.1f} ms")
with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as answer:
    for line in answer.read().decode().splitlines():
        if line.startswith(("process_resident_memory_bytes", "process_open_fds")):
            print("slow: during:", line)
cut = 0
for s in clients:
    s.settimeout(60)
    try:
        if s.recv(64).startswith(b"HTTP/1.1 408"):
            cut += 1
    except OSError:
        pass
print(f"slow: stalled uploads answered 408 and closed by the body read timeout: {cut} of {len(clients)}")
PY
  echo "slow: RSS before $rss_before bytes, after the uploads were cut $(metric process_resident_memory_bytes) bytes"
  stop
  ;;
names)
  echo "== names: 1,000,000 distinct operation names, purged by retention as they age"
  rm -f "$OUT"/names.db*
  # The spans are dated 2023, older than any retention: each minute's sweep purges them, and
  # their endpoints with them.
  start names --retention 1m
  python3 - "$PORT" "$OUT/names.db" <<'PY' | tee "$OUT/names.txt"
import json, os, sqlite3, sys, time, urllib.error, urllib.request
port, path = int(sys.argv[1]), sys.argv[2]
def send(first, count):
    spans = [{"traceId": os.urandom(16).hex(), "spanId": os.urandom(8).hex(), "name": f"GET /item/{n}",
              "kind": 2, "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000010000000"}
             for n in range(first, first + count)]
    body = json.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/traces", body, {"Content-Type": "application/json"})
    while True:  # a full span queue answers 429: sent again after Retry-After, as exporters do
        try:
            urllib.request.urlopen(request, timeout=60).read()
            return
        except urllib.error.HTTPError as error:
            if error.code not in (429, 503):
                raise
            time.sleep(int(error.headers.get("Retry-After", "1")))
def endpoints():
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute("SELECT count(*) FROM endpoints").fetchone()[0]
    finally:
        db.close()
def report(label):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
    values = {line.split(" ")[0]: line.split(" ")[1] for line in text.splitlines() if line.startswith(("process_resident_memory_bytes", "aiops_request_series_folded_spans_total"))}
    print(f"names: {label}: RSS {int(values['process_resident_memory_bytes']) / 2**20:.0f} MiB, "
          f"/metrics {len(text) / 1024:.0f} KiB, folded spans {values['aiops_request_series_folded_spans_total']}, "
          f"endpoints table {endpoints()} rows", flush=True)
report("at start")
for round in range(5):
    for batch in range(40):
        send(round * 200_000 + batch * 5000, 5000)
    report(f"{(round + 1) * 200_000} names sent")
    deadline = time.time() + 90
    while endpoints() > 1000 and time.time() < deadline:
        time.sleep(2)
    report(f"{(round + 1) * 200_000} names, after the retention sweep")
PY
  stop
  ;;
*) echo "unknown section $section"; exit 2 ;;
esac
done
echo "logs and results: $OUT"
