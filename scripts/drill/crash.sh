#!/usr/bin/env bash
# The crash drill (docs/RELIABILITY.md): `lectern serve` is killed with SIGKILL R times
# while D real documents are uploaded over the HTTP API and ingested, and restarted each
# time on the same data. The documents are the development PDFs split into single pages
# (pdfseparate), the small ones also whole, and consecutive pages joined (pdfunite) when
# more are needed. Uploads go several files per request; a request that got no 202 is
# sent again (the same bytes are "unchanged", so a file that landed before the kill is not
# duplicated). Once every upload has landed and no document is queued or processing, the
# server is stopped and `lectern check --json` must find the database and the index
# consistent, with exactly D documents, each ready or failed with a reason.
#
# Usage: scripts/drill/crash.sh [--rounds R] [--docs D] [--postgres URL] [--kill WHAT]
#                                [--seed S] [--keep]
#   defaults: R=20, D=500. --postgres URL: the database in PostgreSQL instead of SQLite, in
#   a fresh database made through URL (e.g. postgres://postgres@127.0.0.1:5432/postgres,
#   trust authentication) and dropped afterwards. --kill database (with --postgres): the
#   outage drill, which restarts the local PostgreSQL cluster (pg_ctlcluster, immediate
#   mode) R times instead, under a server that must keep running. --seed fixes the draw of
#   the kill times.
# LECTERN_BIN picks the binary (default: the release build). A job whose worker was killed
# is claimed again when its lease runs out: 30 s here (LECTERN_INGEST__LEASE_SECS; the
# default is 5 minutes).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh

rounds=20 docs=500 pg="" seed="" keep="" wait_limit=1800 target=server
while [ $# -gt 0 ]; do
    case "$1" in
    --rounds) rounds=$2; shift 2 ;;
    --docs) docs=$2; shift 2 ;;
    --postgres) pg=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --kill) target=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "crash: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ -n "$seed" ] && RANDOM=$seed
case "$target" in
server) ;;
database)
    # The outage drill: PostgreSQL restarted under a running server, which must ride it
    # out (503s and retried jobs), never die or lose a document.
    [ -n "$pg" ] || { echo "crash: --kill database needs --postgres URL" >&2; exit 2; }
    command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ] \
        || { echo "crash: --kill database restarts the local cluster with pg_ctlcluster" >&2; exit 2; }
    ;;
*) echo "crash: --kill server|database" >&2; exit 2 ;;
esac

# Each fetch on its own line, so that set -e stops at one that fails.
assets_env="$(scripts/fetch-assets.sh core pdfium)"
dev_qa_env="$(scripts/fetch-dev-qa.sh)"
set -a
eval "$assets_env"
eval "$dev_qa_env"
set +a
unset LECTERN_DATABASE_URL LECTERN_QDRANT_URL LECTERN_CONFIG LECTERN_DATA_DIR
export LECTERN_INGEST__LEASE_SECS="${LECTERN_INGEST__LEASE_SECS:-30}"
bin="${LECTERN_BIN:-$CARGO_TARGET_DIR/release/lectern}"
[ -x "$bin" ] || { echo "crash: no $bin; cargo build --release -p lectern, or set LECTERN_BIN" >&2; exit 1; }
for tool in curl pdfseparate pdfunite pdfinfo; do
    command -v "$tool" >/dev/null || { echo "crash: $tool not found (curl, poppler-utils)" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/lectern-crash.XXXXXX")"
data="$work/data"
pid="" uploader="" db=""
cleanup() {
    [ -n "$uploader" ] && kill "$uploader" 2>/dev/null || true
    [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null || true
    if [ -n "$db" ]; then
        psql -q "$pg" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    if [ -n "$keep" ]; then echo "crash: kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

if [ -n "$pg" ]; then
    db="lectern_drill_$(python3 -c 'import secrets; print(secrets.token_hex(6))')"
    psql -q "$pg" -c "CREATE DATABASE $db" >/dev/null
    export LECTERN_DATABASE_URL="${pg%/*}/$db"
    echo "crash: database $db in PostgreSQL" >&2
fi

# --- the documents --------------------------------------------------------------------
python3 - "$LECTERN_DEV_QA_DIR" "$work" "$docs" <<'PY'
import hashlib, os, subprocess, sys
src, work, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
pages_dir, out = f"{work}/pages", f"{work}/docs"
os.makedirs(pages_dir); os.makedirs(out)
def pages_of(path):
    info = subprocess.run(["pdfinfo", path], capture_output=True, text=True).stdout
    return int(next(l.split()[1] for l in info.splitlines() if l.startswith("Pages:")))
candidates = []  # (name, path), in order of preference
singles = {}
for name in sorted(f for f in os.listdir(src) if f.endswith(".pdf")):
    path, stem = f"{src}/{name}", name[:-4]
    n = pages_of(path)
    if n <= 40:
        candidates.append((name, path))  # a whole small file
    subprocess.run(["pdfseparate", path, f"{pages_dir}/{stem}-p%04d.pdf"], check=True, capture_output=True)
    singles[stem] = [f"{pages_dir}/{stem}-p{i:04d}.pdf" for i in range(1, n + 1)]
for stem, pages in singles.items():
    candidates += [(os.path.basename(p), p) for p in pages]
# More documents than pages: consecutive pages joined, two, then three...
span = 2
while len(candidates) < want and span <= 8:
    for stem, pages in singles.items():
        for i in range(0, len(pages) - span + 1):
            name = f"{stem}-p{i + 1:04d}-{i + span:04d}.pdf"
            candidates.append((name, (pages[i : i + span])))
            if len(candidates) >= want * 2:
                break
    span += 1
seen, chosen = set(), 0
for name, path in candidates:
    if chosen == want:
        break
    target = f"{out}/{name}"
    if isinstance(path, list):
        subprocess.run(["pdfunite", *path, target], check=True, capture_output=True)
    else:
        with open(path, "rb") as f, open(target, "wb") as t:
            t.write(f.read())
    digest = hashlib.sha256(open(target, "rb").read()).hexdigest()
    if digest in seen:
        os.remove(target)  # the same bytes would be one document
        continue
    seen.add(digest)
    chosen += 1
if chosen < want:
    sys.exit(f"crash: only {chosen} distinct documents could be made from {src}")
print(f"crash: {chosen} documents made", file=sys.stderr)
PY
mkdir -p "$work/batches"
(cd "$work/docs" && ls | sort) | split -l 8 -d -a 4 - "$work/batches/b"

# --- the server -----------------------------------------------------------------------
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
"$bin" --data-dir "$data" user create --email drill@example.org >/dev/null
key=$("$bin" --data-dir "$data" api-key create --user drill@example.org --name drill 2>/dev/null)
auth="Authorization: Bearer $key"

start() { lectern_serve "$bin" "$data" "$port" "$work/serve.log"; }

# Only this script kills the server: one that died on its own fails the drill.
alive() {
    kill -0 "$pid" 2>/dev/null && return 0
    echo "crash: lectern serve died on its own; the end of its log:" >&2
    tail -n 30 "$work/serve.log" >&2
    exit 1
}

# Counts of the workspace's documents by status: "queued processing ready failed total".
statuses() {
    curl -sf -H "$auth" "$url/v1/workspaces/$ws/documents" | python3 -c '
import json, sys
docs = json.load(sys.stdin)["documents"]
count = lambda s: sum(d["status"] == s for d in docs)
print(count("queued"), count("processing"), count("ready"), count("failed"), len(docs))'
}

began=$(date +%s)
start
ws=$(curl -sf -H "$auth" -H 'Content-Type: application/json' -d '{"name": "Drill"}' \
    "$url/v1/workspaces" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')

# Uploads in the background, each batch until it gets its 202.
(
    for batch in "$work"/batches/b*; do
        form=()
        while read -r f; do form+=(-F "file=@$work/docs/$f"); done <"$batch"
        while :; do
            code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 300 -H "$auth" "${form[@]}" \
                "$url/v1/workspaces/$ws/documents" || true)
            echo "$(basename "$batch") $code" >>"$work/uploads.log"
            [ "$code" = 202 ] && break
            sleep 0.5
        done
    done
) &
uploader=$!

kills=0 mid_job=0
for round in $(seq 1 "$rounds"); do
    sleep "$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.5 + 3.5 * r / 32767 }')"
    alive
    read -r queued processing _ <<<"$(statuses 2>/dev/null || echo "? 0")"
    [ "${processing:-0}" -gt 0 ] && mid_job=$((mid_job + 1))
    if [ "$target" = database ]; then
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main restart -m immediate
        kills=$((kills + 1))
        echo "crash: round $round: PostgreSQL restarted with ${queued:-?} queued and ${processing:-?} processing" >&2
        continue
    fi
    kill -9 "$pid"
    wait "$pid" 2>/dev/null || true
    kills=$((kills + 1))
    echo "crash: round $round: killed with ${queued:-?} queued and ${processing:-?} processing" >&2
    start
done
last_restart=$(date +%s)

wait "$uploader"
uploader=""
requests=$(wc -l <"$work/uploads.log")
refused=$(grep -vc ' 202$' "$work/uploads.log" || true)
echo "crash: every upload landed ($requests requests, $refused without a 202 and sent again)" >&2

# Until nothing is left to do; a job killed mid-way waits for its lease to run out.
deadline=$(($(date +%s) + wait_limit))
while :; do
    alive
    read -r queued processing ready failed total <<<"$(statuses)"
    [ "$queued" = 0 ] && [ "$processing" = 0 ] && break
    if [ "$(date +%s)" -gt "$deadline" ]; then
        echo "crash: still $queued queued and $processing processing after ${wait_limit} s" >&2
        exit 1
    fi
    echo "crash: $ready ready, $failed failed, $queued queued, $processing processing" >&2
    sleep 10
done
drained=$(date +%s)
curl -sf -H "$auth" "$url/v1/workspaces/$ws/documents" >"$work/documents.json"
kill -TERM "$pid"
wait "$pid" 2>/dev/null || true
pid=""

set +e
"$bin" --data-dir "$data" check --json >"$work/check.json" 2>"$work/check.log"
check_rc=$?
set -e
KILLS=$kills MID_JOB=$mid_job REQUESTS=$requests REFUSED=$refused BACKEND=${db:+PostgreSQL} \
TOTAL_S=$((drained - began)) DRAIN_S=$((drained - last_restart)) \
python3 - "$work" "$check_rc" "$docs" <<'PY'
import json, os, sys
work, rc, want = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
e = os.environ
try:
    check = json.load(open(f"{work}/check.json"))
except ValueError:
    sys.exit("crash: lectern check printed no JSON: " + open(f"{work}/check.log", errors="replace").read()[-2000:])
print(f"database: {e['BACKEND'] or 'SQLite'}; documents: {check['documents']} (wanted {want}): "
      f"{check['ready']} ready, {check['failed']} failed, {check['pending']} pending")
print(f"index: {check['chunks']} chunk rows, {check['points']} points, {check['orphan_points']} orphan points")
print(f"kills: {e['KILLS']}, {e['MID_JOB']} of them while a document was processing; "
      f"upload requests: {e['REQUESTS']}, {e['REFUSED']} without a 202 and sent again")
print(f"time: {e['TOTAL_S']} s in all, {e['DRAIN_S']} s from the last restart until every document was done")
reasons = {}
for d in json.load(open(f"{work}/documents.json"))["documents"]:
    if d["status"] == "failed":
        reasons[d.get("error") or "(no reason)"] = reasons.get(d.get("error") or "(no reason)", 0) + 1
for reason, n in sorted(reasons.items(), key=lambda r: -r[1]):
    print(f"  failed {n:4}: {reason}")
violations = [f"{p.get('workspace')}/{p.get('file_name')}: {p['problem']}" for p in check["problems"]]
if rc != 0 and not violations:
    violations.append(f"lectern check exited {rc}")
if check["documents"] != want:
    violations.append(f"{check['documents']} documents, not {want}: an upload was lost or duplicated")
if check["ready"] + check["failed"] != want or check["pending"]:
    violations.append("not every document is ready or failed")
if violations:
    print(f"\n{len(violations)} VIOLATIONS:")
    for v in violations[:100]:
        print("  " + v)
    sys.exit(1)
print("\ncrash drill passed")
PY
