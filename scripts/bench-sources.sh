#!/usr/bin/env bash
# How long a folder source's sync takes (docs/BENCHMARKS.md, "Folder sources"): N small
# Markdown files (default 1,000, in 10 folders) are added as a source of a fresh data dir
# (the first sync, and their indexing, are timed too), then synced again unchanged three
# times, then once after 1% of them were touched (new time, same bytes) and 1% changed.
# Each sync's own time is the `seconds` of `lectern source sync --json`; the wall time of
# the command (loading the embedding model and opening the index included) is printed
# beside it.
#
# Usage: scripts/bench-sources.sh [--files N] [--keep]
# LECTERN_BIN picks the binary (default: the release build).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

files=1000 keep=""
while [ $# -gt 0 ]; do
    case "$1" in
    --files) files=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "bench-sources: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

lectern_prepare core pdfium
bin="${LECTERN_BIN:-$CARGO_TARGET_DIR/release/lectern}"
[ -x "$bin" ] || { echo "bench-sources: no binary at $bin (cargo build --release -p lectern, or set LECTERN_BIN)" >&2; exit 1; }

work=$(mktemp -d)
[ -n "$keep" ] || trap 'rm -rf "$work"' EXIT
folder="$work/docs"
for i in $(seq 0 $((files - 1))); do
    dir="$folder/year-$((2000 + i % 10))"
    mkdir -p "$dir"
    printf '# Note %d\n\nThe archive keeps note %d of year %d: minutes of a meeting, with %d decisions and a follow-up on item %d.\n' \
        "$i" "$i" "$((2000 + i % 10))" "$((i % 7))" "$((i * 13 % 101))" >"$dir/note-$i.md"
done
# Older than the sync's "may still be changing" window, as files at rest are.
find "$folder" -type f -exec touch -d '1 hour ago' {} +

export LECTERN_INGEST__SOURCE_ROOTS="[\"$work\"]"
data="$work/data"
timed() { # prints "<wall seconds> <json>"
    local start end out
    start=$(date +%s.%N)
    out=$("$bin" --data-dir "$data" "$@")
    end=$(date +%s.%N)
    printf '%s %s\n' "$(echo "$end - $start" | bc)" "$(printf '%s' "$out" | tail -n 1)"
}
seconds() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); r=d.get("result") or d.get("last_result") or d; print(r.get("seconds"), {k: r.get(k) for k in ("added","changed","renamed","deleted","unchanged","failed")})' "$1"; }

echo "bench-sources: $files files; binary $bin; $(nproc) cores"
read -r wall json < <(timed source add --workspace Bench --name notes --json "$folder")
echo "first sync and indexing: ${wall} s wall; sync $(seconds "$json")"
for run in 1 2 3; do
    read -r wall json < <(timed source sync --workspace Bench --json notes)
    echo "unchanged, run $run: ${wall} s wall; sync $(seconds "$json")"
done
step=$((files / 100 > 0 ? files / 100 : 1))
for i in $(seq 0 "$step" $((files - 1)) | head -n "$step"); do
    touch "$folder/year-$((2000 + i % 10))/note-$i.md"
done
for i in $(seq 1 "$step" $((files - 1)) | head -n "$step"); do
    printf '\nAmended.\n' >>"$folder/year-$((2000 + i % 10))/note-$i.md"
done
read -r wall json < <(timed source sync --workspace Bench --json notes)
echo "after $step touched and $step changed: ${wall} s wall; sync $(seconds "$json")"
