#!/usr/bin/env bash
# Memory of large uploads: starts `lectern serve` on a fresh data dir, measures its
# resident memory (VmRSS) at rest, then sends 8 uploads of a 200 MB file at once over the
# ingest API while sampling VmRSS every 0.2 s, and prints the resident memory at rest, the
# peak and the difference. Uploads stream to disk, so the peak must stay within 100 MB of
# the memory at rest; the script exits non-zero when it does not.
#
# Usage: scripts/upload-rss.sh. LECTERN_BIN picks the binary (default: the release build,
# else the debug build); UPLOADS, UPLOAD_MB, MAX_FILE_MB and MARGIN_MB change the load,
# the size limit and the bound.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
lectern_prepare core

uploads="${UPLOADS:-8}"
upload_mb="${UPLOAD_MB:-200}"
margin_mb="${MARGIN_MB:-100}"
bin="${LECTERN_BIN:-}"
if [ -z "$bin" ]; then
    bin="$CARGO_TARGET_DIR/release/lectern"
    [ -x "$bin" ] || bin="$CARGO_TARGET_DIR/debug/lectern"
fi
[ -x "$bin" ] || { echo "upload-rss: no $bin; cargo build --release -p lectern, or set LECTERN_BIN" >&2; exit 1; }

# In the cache dir, not /tmp: that may be memory (tmpfs), and the uploads take ~2 GB.
work="$(mktemp -d "$LECTERN_CACHE_DIR/upload-rss.XXXXXX")"
data="$work/data"
pid=""
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
fail() {
    echo "upload-rss: $*" >&2
    if [ -f "$work/serve.log" ]; then
        echo "--- the end of the server's log:" >&2
        tail -n 40 "$work/serve.log" >&2
    fi
    exit 1
}

# The file (200 MB of text, plus its line breaks) passes the size limit; no background
# workers, so the uploads are received and stored but not parsed (parsing is measured
# elsewhere; this measures the upload path).
export LECTERN_INGEST__MAX_FILE_MB="${MAX_FILE_MB:-256}"
export LECTERN_INGEST__WORKERS=0
export LECTERN_DATA_DIR="$data"

email=upload-rss@example.org
"$bin" user create --email "$email" >/dev/null
key="$("$bin" api-key create --user "$email" --name upload-rss 2>/dev/null)"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
"$bin" serve --bind "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
pid=$!
for _ in $(seq 1 300); do
    curl -sf "$base/ready" >/dev/null && break
    kill -0 "$pid" 2>/dev/null || fail "serve exited before it was ready"
    sleep 1
done
curl -sf "$base/ready" >/dev/null || fail "serve did not become ready"

ws="$(curl -sf -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
    -d '{"name": "upload-rss"}' "$base/v1/workspaces" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')" || fail "cannot create a workspace"

# Random bytes, written once, as base64 text: a text file is accepted and moved into
# place, the path a real upload takes (raw random bytes would be refused as binary).
blob="$work/upload.txt"
head -c $((upload_mb * 786432)) /dev/urandom | base64 -w 76 >"$blob"

rss_kb() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0; }
sleep 2
idle_kb=$(rss_kb)

# Samples until the uploads are done; the peak is kept in a file the sampler rewrites.
echo "$idle_kb" >"$work/peak"
(
    peak=$idle_kb
    while [ ! -e "$work/done" ] && kill -0 "$pid" 2>/dev/null; do
        now=$(rss_kb)
        if [ "${now:-0}" -gt "$peak" ]; then
            peak=$now
            echo "$peak" >"$work/peak"
        fi
        sleep 0.2
    done
) &
sampler=$!

started=$(date +%s.%N)
curls=()
for i in $(seq 1 "$uploads"); do
    # `Expect:` off: curl would otherwise wait for a 100 Continue before each body.
    curl -sS -o "$work/answer-$i.json" -w '%{http_code}' -H 'Expect:' \
        -H "Authorization: Bearer $key" -F "file=@$blob;filename=upload-$i.txt" \
        "$base/v1/workspaces/$ws/documents" >"$work/status-$i" &
    curls+=("$!")
done
broken=0
for c in "${curls[@]}"; do wait "$c" || broken=1; done
finished=$(date +%s.%N)
touch "$work/done"
wait "$sampler" || true
peak_kb=$(cat "$work/peak")

for i in $(seq 1 "$uploads"); do
    status="$(cat "$work/status-$i" 2>/dev/null || echo none)"
    if [ "$status" != 202 ]; then
        echo "upload $i answered $status: $(cat "$work/answer-$i.json" 2>/dev/null)" >&2
        broken=1
    fi
done
[ "$broken" = 0 ] || fail "not every upload was accepted"
outcomes="$(python3 - "$work"/answer-*.json <<'PY'
import collections, json, sys
seen = collections.Counter()
for path in sys.argv[1:]:
    with open(path) as f:
        seen.update(d["outcome"] for d in json.load(f)["documents"])
print(" ".join(f"{k}={v}" for k, v in sorted(seen.items())))
PY
)"

awk -v idle="$idle_kb" -v peak="$peak_kb" -v n="$uploads" -v mb="$upload_mb" \
    -v s="$started" -v f="$finished" -v outcomes="$outcomes" 'BEGIN {
    printf "uploads=%d size_mb=%d seconds=%.1f %s\n", n, mb, f - s, outcomes
    printf "idle_rss_mb=%.1f peak_rss_mb=%.1f difference_mb=%.1f\n", idle / 1024, peak / 1024, (peak - idle) / 1024
}'
if [ "$peak_kb" -gt $((idle_kb + margin_mb * 1024)) ]; then
    fail "the peak is more than $margin_mb MB above the memory at rest"
fi
