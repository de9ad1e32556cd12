#!/usr/bin/env bash
# Fetches the fixed ingest benchmark corpus: the GNU Octave manual (octave.pdf from
# Debian 12's octave-doc 7.3.0-2) and the gnuplot manual (from the dev QA set), both
# sha256-checked, into ${LECTERN_CACHE_DIR}/bench-corpus. Prints LECTERN_BENCH_CORPUS=DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
dest="$LECTERN_CACHE_DIR/bench-corpus"
mkdir -p "$dest"
readonly DEB_SHA=b27897cc7e3d688daa5cb8f8d1ea47077f3fbd205ce32e22522200ff0c1eadd5
readonly PDF_SHA=ddd24489f87b46fbf99c15cc34aa865ae66775fb7c21927f7f2d6be9470becb8
ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

if ! ok "$dest/octave.pdf" "$PDF_SHA"; then
    tmp="$(mktemp -d)"
    trap 'rm -rf "$tmp"' EXIT
    echo "fetch-bench-corpus: downloading octave-doc 7.3.0-2" >&2
    (cd "$tmp" && apt-get download -q "octave-doc=7.3.0-2" >&2) || {
        [ "$(id -u)" -eq 0 ] && apt-get update -qq >&2
        (cd "$tmp" && apt-get download -q "octave-doc=7.3.0-2" >&2)
    }
    ok "$tmp"/octave-doc_7.3.0-2_all.deb "$DEB_SHA" || { echo "fetch-bench-corpus: octave-doc .deb checksum mismatch" >&2; exit 1; }
    dpkg-deb --fsys-tarfile "$tmp"/octave-doc_7.3.0-2_all.deb | tar -x -C "$tmp" ./usr/share/doc/octave/octave.pdf
    ok "$tmp/usr/share/doc/octave/octave.pdf" "$PDF_SHA" || { echo "fetch-bench-corpus: octave.pdf checksum mismatch" >&2; exit 1; }
    mv "$tmp/usr/share/doc/octave/octave.pdf" "$dest/octave.pdf"
fi
eval "$(scripts/fetch-dev-qa.sh)"
cp -f "$LECTERN_DEV_QA_DIR/gnuplot.pdf" "$dest/gnuplot.pdf"
echo "LECTERN_BENCH_CORPUS=$dest"
