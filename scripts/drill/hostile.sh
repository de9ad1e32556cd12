#!/usr/bin/env bash
# The hostile-upload drill (docs/RELIABILITY.md): N hostile files and K good ones, made by
# scripts/drill/mutate.py from real documents (the development PDFs, the hard PDFs, and
# DOCX, HTML, Markdown and text built from their words), ingested in one
# `lectern ingest --json` into a fresh data dir. Passes when the command exits 0 (nothing
# took it down), every file is ingested, failed with a reason, or unchanged (the same
# bytes as another), every good file is ingested, and `lectern check` finds the database
# and the index consistent. Prints the outcome per mutation and per failure reason, the
# time taken and the peak memory; exits 1 on any violation.
#
# Usage: scripts/drill/hostile.sh [--count N] [--good K] [--seed S] [--keep]
#   defaults: N=1000, K=20, S=1; --keep leaves the files and the data dir (printed).
# LECTERN_BIN picks the binary (default: the release build). Disk: about 0.7 GB of files
# per 1000, and the accepted ones again as stored originals.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/env.sh

count=1000 good=20 seed=1 keep=""
while [ $# -gt 0 ]; do
    case "$1" in
    --count) count=$2; shift 2 ;;
    --good) good=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "hostile: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

# Each fetch on its own line, so that set -e stops at one that fails.
assets_env="$(scripts/fetch-assets.sh core pdfium)"
dev_qa_env="$(scripts/fetch-dev-qa.sh)"
test_docs_env="$(scripts/fetch-test-docs.sh)"
set -a
eval "$assets_env"
eval "$dev_qa_env"
eval "$test_docs_env"
set +a
# The embedded shape, whatever this shell points at.
unset LECTERN_DATABASE_URL LECTERN_QDRANT_URL LECTERN_CONFIG LECTERN_DATA_DIR
bin="${LECTERN_BIN:-$CARGO_TARGET_DIR/release/lectern}"
[ -x "$bin" ] || { echo "hostile: no $bin; cargo build --release -p lectern, or set LECTERN_BIN" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/lectern-hostile.XXXXXX")"
if [ -n "$keep" ]; then
    echo "hostile: working in $work (kept)" >&2
else
    trap 'rm -rf "$work"' EXIT
fi

echo "hostile: making $count hostile and $good good files (seed $seed)" >&2
python3 scripts/drill/mutate.py --count "$count" --good "$good" --seed "$seed" \
    --out "$work/files" >"$work/made.json"

echo "hostile: lectern ingest of $(($count + $good)) files" >&2
python3 - "$bin" "$work" <<'PY'
import json, resource, subprocess, sys, time
bin, work = sys.argv[1], sys.argv[2]
started = time.monotonic()
with open(f"{work}/ingest.json", "wb") as out, open(f"{work}/ingest.log", "wb") as log:
    rc = subprocess.run([bin, "--data-dir", f"{work}/data", "ingest", "--workspace", "Drill",
                         "--json", f"{work}/files"], stdout=out, stderr=log).returncode
seconds = time.monotonic() - started
# The largest resident set of the command and of its parse workers (they are its children).
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
json.dump({"rc": rc, "seconds": seconds, "peak_rss_mib": peak}, open(f"{work}/run.json", "w"))
PY

set +e
"$bin" --data-dir "$work/data" check --json >"$work/check.json" 2>"$work/check.log"
check_rc=$?
set -e

python3 - "$work" "$check_rc" <<'PY'
import collections, json, re, sys
work, check_rc = sys.argv[1], int(sys.argv[2])
made = json.load(open(f"{work}/files/.manifest.json"))
run = json.load(open(f"{work}/run.json"))
kind_of = {f["name"]: f["kind"] for f in made["files"]}
violations = []
if run["rc"] != 0:
    log = open(f"{work}/ingest.log", errors="replace").read()[-3000:]
    violations.append(f"lectern ingest exited {run['rc']} (a crash?); the end of its log:\n{log}")
try:
    report = json.load(open(f"{work}/ingest.json"))
except ValueError:
    report = {"documents": [], "totals": {}, "stage_seconds": {}}
    violations.append("lectern ingest printed no JSON report")

by_kind = collections.defaultdict(collections.Counter)
reasons = collections.Counter()
seen = set()
for doc in report["documents"]:
    name = doc["path"].rsplit("/", 1)[-1]
    seen.add(name)
    kind = kind_of.get(name, "?")
    by_kind[kind][doc["status"]] += 1
    if doc["status"] not in ("ingested", "failed", "unchanged"):
        violations.append(f"{name} ({kind}): status {doc['status']} {doc.get('error') or ''}")
    if doc["status"] == "failed":
        error = (doc.get("error") or "").strip()
        if not error:
            violations.append(f"{name} ({kind}): failed without a reason")
        # Alike reasons counted together: numbers and quoted names made uniform.
        reasons[re.sub(r"\d+", "N", re.sub(r'"[^"]*"', '"…"', error))[:140] or "(no reason)"] += 1
    if name.startswith("good-") and doc["status"] != "ingested":
        violations.append(f"{name} (an unmodified seed, {doc.get('error')}): {doc['status']}, not ingested")
missing = set(kind_of) - seen
if report["documents"] and missing:
    violations.append(f"{len(missing)} files have no outcome, e.g. {sorted(missing)[:5]}")

try:
    check = json.load(open(f"{work}/check.json"))
except ValueError:
    check = {}
    violations.append(f"lectern check printed no JSON: {open(f'{work}/check.log', errors='replace').read()[-2000:]}")
totals = report.get("totals", {})
if check:
    for p in check.get("problems", []):
        violations.append(f"check: {p.get('workspace')}/{p.get('file_name')}: {p['problem']}")
    if check_rc != 0 and not check.get("problems"):
        violations.append(f"lectern check exited {check_rc}")
    expected = {"documents": totals.get("ingested", 0) + totals.get("failed", 0),
                "ready": totals.get("ingested", 0), "failed": totals.get("failed", 0), "pending": 0}
    for key, want in expected.items():
        if check.get(key) != want:
            violations.append(f"check: {key} = {check.get(key)}, expected {want} from the ingest report")

print(f"files: {len(kind_of)} ({made['hostile']} hostile, {made['good']} good; seed {made['seed']})")
print(f"outcome: {totals.get('ingested', 0)} ingested, {totals.get('failed', 0)} failed, "
      f"{totals.get('unchanged', 0)} unchanged; {totals.get('pages', 0)} pages, {totals.get('chunks', 0)} chunks")
print(f"time: {run['seconds']:.1f} s ({len(kind_of) / max(run['seconds'], 1e-9):.1f} files/s); by stage: "
      + ", ".join(f"{k} {v:.1f} s" for k, v in report.get("stage_seconds", {}).items()))
print(f"peak memory: {run['peak_rss_mib']} MiB (the largest of lectern and its parse workers)")
print(f"check: {check.get('documents')} documents, {check.get('chunks')} chunk rows, "
      f"{check.get('points')} points, {len(check.get('problems', []))} problems")
print("by mutation:")
for kind in sorted(by_kind):
    print(f"  {kind:22} " + ", ".join(f"{n} {s}" for s, n in sorted(by_kind[kind].items())))
print("failure reasons:")
for reason, n in reasons.most_common():
    print(f"  {n:5}  {reason}")
if violations:
    print(f"\n{len(violations)} VIOLATIONS:")
    for v in violations[:100]:
        print(f"  {v}")
    sys.exit(1)
print("\nhostile drill passed")
PY
