#!/usr/bin/env bash
# Memory of `lectern serve` with many chunks indexed, beside the model's size: builds the
# points once (`lectern bench retrieval --keep`, real chunks of the bench corpus), starts
# `lectern serve` on them, runs searches and answers over HTTP, and prints the resident
# memory after start-up and the peak.
#
# Usage: scripts/bench-serve-memory.sh [POINTS] (default 100000). LECTERN_BIN picks the
# binary (default: the release build), LECTERN_LLM_MODEL the GGUF (default: the best fetched).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
lectern_prepare core pdfium llm qwen
points="${1:-100000}"
bin="${LECTERN_BIN:-$CARGO_TARGET_DIR/release/lectern}"
[ -x "$bin" ] || { echo "bench-serve-memory: no $bin; cargo build --release -p lectern, or set LECTERN_BIN" >&2; exit 1; }
set -a; eval "$(scripts/fetch-bench-corpus.sh)"; set +a
qa=tests/data/dev-qa/qa.jsonl
dir="$LECTERN_CACHE_DIR/bench-serve-$points"
if [ ! -f "$dir/.kept" ]; then
    rm -rf "$dir" "$dir.json"
    "$bin" bench retrieval --points "$points" --real 600 --questions "$qa" --keep "$dir" --json \
        "$LECTERN_BENCH_CORPUS" >"$dir.json"
    touch "$dir/.kept"
fi
read -r ws key < <(python3 -c 'import json,sys; k=json.load(open(sys.argv[1]))["kept"]; print(k["workspace"], k["api_key"])' "$dir.json")
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$bin" --data-dir "$dir" serve --bind "127.0.0.1:$port" >"$dir.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 1 300); do curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break; sleep 1; done
curl -sf "http://127.0.0.1:$port/ready" >/dev/null || { echo "serve did not become ready; see $dir.log" >&2; exit 1; }
mib() { awk -v k="$1" '$1==k":" {printf "%.0f", $2/1024}' "/proc/$pid/status"; }
ready_rss=$(mib VmRSS)
python3 - "$qa" "$port" "$key" "$ws" <<'PY'
import json, sys, urllib.request
qa, port, key, ws = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
questions = [json.loads(l)["question"] for l in open(qa) if l.strip()]
def call(path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", json.dumps(body).encode(),
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)
for q in questions:
    call("/v1/search", {"question": q, "workspaces": [ws]})
for q in questions[:3]:
    call("/v1/answer", {"question": q, "workspaces": [ws]})
PY
model=$("$bin" --data-dir "$dir" config 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["llm"]["model_path"] or "")')
echo "points=$points ready_rss_mib=$ready_rss peak_rss_mib=$(mib VmHWM) rss_after_mib=$(mib VmRSS) model=${model:-?} model_mib=$([ -n "$model" ] && du -m "$model" | cut -f1)"
