#!/usr/bin/env bash
# The load drill (docs/RELIABILITY.md): U concurrent chat users for T against `lectern
# serve` with SmolLM2, driven by locust (installed from the Python registry if missing).
# Each user asks a question of the development set through /v1/chat/completions, waits
# 1-3 s, and asks again. Passes when no response is 500 or above, every 429 is the
# generation queue saying it is full (code "busy", with Retry-After), and the server's RSS
# stays bounded; prints p50/p99 latencies, counts per status and the RSS.
#
# Usage: scripts/drill/load.sh [--users U] [--time T] [--keep]   (defaults 50 users, 5m)
# LECTERN_BIN picks the binary (default: the release build; the debug one works, slower).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh

users=50 duration=5m keep=""
while [ $# -gt 0 ]; do
    case "$1" in
    --users) users=$2; shift 2 ;;
    --time) duration=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "load: unknown argument $1" >&2; exit 2 ;;
    esac
done

assets_env="$(scripts/fetch-assets.sh core pdfium llm)"
dev_qa_env="$(scripts/fetch-dev-qa.sh)"
set -a
eval "$assets_env"
eval "$dev_qa_env"
set +a
unset LECTERN_DATABASE_URL LECTERN_QDRANT_URL LECTERN_CONFIG LECTERN_DATA_DIR
export LECTERN_LLM_MODEL="$LECTERN_SMOLLM2_MODEL"
bin="${LECTERN_BIN:-$CARGO_TARGET_DIR/release/lectern}"
[ -x "$bin" ] || { echo "load: no $bin; cargo build --release -p lectern, or set LECTERN_BIN" >&2; exit 1; }
python3 -c "import locust" 2>/dev/null || python3 -m pip install -q "locust==2.*" >&2

work="$(mktemp -d "${TMPDIR:-/tmp}/lectern-load.XXXXXX")"
data="$work/data"
pid="" sampler=""
cleanup() {
    [ -n "$sampler" ] && kill "$sampler" 2>/dev/null || true
    [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    if [ -n "$keep" ]; then echo "load: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
"$bin" --data-dir "$data" user create --email load@example.org >/dev/null
key=$("$bin" --data-dir "$data" api-key create --user load@example.org --name load 2>/dev/null)
auth="Authorization: Bearer $key"
lectern_serve "$bin" "$data" "$port" "$work/serve.log"

# The development documents, and the questions about them.
ws=$(curl -sf -H "$auth" -H 'Content-Type: application/json' -d '{"name": "Load"}' \
    "$url/v1/workspaces" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
form=()
for f in $(python3 -c '
import json
docs = {json.loads(l).get("doc") for l in open("tests/data/dev-qa/qa.jsonl") if l.strip()}
print(" ".join(sorted(d for d in docs if d)))'); do
    form+=(-F "file=@$LECTERN_DEV_QA_DIR/$f")
done
curl -sf -o /dev/null -H "$auth" "${form[@]}" "$url/v1/workspaces/$ws/documents"
echo "load: ingesting $((${#form[@]} / 2)) documents" >&2
while :; do
    left=$(curl -sf -H "$auth" "$url/v1/workspaces/$ws/documents" | python3 -c '
import json, sys
print(sum(d["status"] in ("queued", "processing") for d in json.load(sys.stdin)["documents"]))')
    [ "$left" = 0 ] && break
    sleep 2
done

idle_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
( while kill -0 "$pid" 2>/dev/null; do awk '/VmRSS/ {print $2}' "/proc/$pid/status"; sleep 1; done ) >"$work/rss.log" 2>/dev/null &
sampler=$!

cat >"$work/locustfile.py" <<'PY'
import json, os, random, time
from locust import HttpUser, between, events, task

QUESTIONS = [json.loads(l)["question"] for l in open("tests/data/dev-qa/qa.jsonl") if l.strip()]
STATUS = {}
LATENCY = []
BAD_429 = []

class Asker(HttpUser):
    wait_time = between(1, 3)

    @task
    def ask(self):
        body = {"model": "Load", "messages": [{"role": "user", "content": random.choice(QUESTIONS)}]}
        started = time.monotonic()
        with self.client.post("/v1/chat/completions", json=body, name="chat",
                              headers={"Authorization": "Bearer " + os.environ["LOAD_KEY"]},
                              catch_response=True) as r:
            STATUS[r.status_code] = STATUS.get(r.status_code, 0) + 1
            if r.status_code == 200:
                LATENCY.append(time.monotonic() - started)
                r.success()
            elif r.status_code == 429:
                # The queue is full: expected under this load, if it says so.
                try:
                    code = r.json()["error"]["code"]
                except Exception:
                    code = None
                if code != "busy" or "retry-after" not in {k.lower() for k in r.headers}:
                    BAD_429.append((code, dict(r.headers)))
                r.success()
            else:
                r.failure(f"status {r.status_code}")

@events.quitting.add_listener
def report(environment, **_):
    LATENCY.sort()
    pick = lambda q: round(LATENCY[min(len(LATENCY) - 1, int(q * len(LATENCY)))], 2) if LATENCY else None
    with open(os.environ["LOAD_REPORT"], "w") as f:
        json.dump({"status": STATUS, "answered": len(LATENCY), "p50_s": pick(0.5),
                   "p99_s": pick(0.99), "bad_429": BAD_429[:5]}, f)
PY
echo "load: $users users for $duration" >&2
LOAD_KEY="$key" LOAD_REPORT="$work/report.json" python3 -m locust -f "$work/locustfile.py" \
    --headless -u "$users" -r 10 -t "$duration" --host "$url" --only-summary \
    >"$work/locust.log" 2>&1 || true
kill -0 "$pid" 2>/dev/null || { echo "load: lectern serve died; its log:" >&2; tail -n 30 "$work/serve.log" >&2; exit 1; }
kill "$sampler" 2>/dev/null || true
sampler=""

python3 - "$work/report.json" "$work/rss.log" "$idle_kb" "$users" "$duration" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
rss = [int(l) for l in open(sys.argv[2]) if l.strip()]
idle = int(sys.argv[3])
status = {int(k): v for k, v in report["status"].items()}
errors = sum(v for k, v in status.items() if k >= 500)
print(json.dumps({"users": int(sys.argv[4]), "time": sys.argv[5], "status": status,
                  "answered": report["answered"], "p50_s": report["p50_s"], "p99_s": report["p99_s"],
                  "rss_idle_mb": idle // 1024, "rss_peak_mb": max(rss, default=idle) // 1024}, indent=1))
problems = []
if errors:
    problems.append(f"{errors} responses of 500 or above")
if report["bad_429"]:
    problems.append(f"429 that is not the full queue: {report['bad_429']}")
if not report["answered"]:
    problems.append("no question was answered")
for p in problems:
    print("load: FAILED:", p, file=sys.stderr)
sys.exit(1 if problems else 0)
PY
