#!/usr/bin/env bash
# Fetches the hard PDFs the parser tests use, from pinned source releases: pypdf's
# encrypted and malformed files, ocrmypdf's scanned ones (no text layer), and a Word
# document with tables (merged cells too) from python-docx's test files. Each
# extracted file is checked by sha256. Prints LECTERN_TEST_DOCS_DIR=... on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
dest="$LECTERN_CACHE_DIR/test-docs"
mkdir -p "$dest"

# file in the release | sha256 of the file
files=(
  "pypdf-7.1.1/resources/libreoffice-writer-password.pdf 3e333bff0196d0c5320f40cdd1b7a3abd21b316de79de3c0f9083accdaef9358"
  "pypdf-7.1.1/resources/encryption/r4-owner-password.pdf 26bc009957639957d7fd9b49f17e123deb60bfca8617c5b0a3f6de25eef30e34"
  "pypdf-7.1.1/resources/encryption/r6-empty-password.pdf ec9f1792e85a2dcad4d76c46505b87f62fe9e2bbbf167e1d5386b1d0576df468"
  "pypdf-7.1.1/resources/crazyones.pdf 9c59fa59b3e5ac73f8fa894a11bd17f8c92030dcf6d91924f133f8887456b3bc"
  "ocrmypdf-17.13.0/tests/resources/skew.pdf 6be6b54d49df71351974774404e299b756d8d3cbeb2c4a31f15fae8dd983d72f"
  "ocrmypdf-17.13.0/tests/resources/c03-29.pdf c2ff83af7d028c95209cc7eebdf80fd5bb4cd292973ed6601e4bab7d1929f201"
  "ocrmypdf-17.13.0/tests/resources/linn.pdf e923f6e8e036185f8f2aae5f7fdeefd8ac658d627cebd4ebf630de4cbf0a2d64"
  "ocrmypdf-17.13.0/tests/resources/invalid.pdf 60abfda66889f7ea7721f5b25bf5c189440a988411cb5363c0f616c800f1d889"
  "python_docx-1.2.0/features/steps/test_files/tbl-cell-access.docx dc01708a24c5e940c94b99b7ee496606e5f17152bc41cec211c9f8c72334cb22"
)

ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }

missing=0
for entry in "${files[@]}"; do
    read -r path sum <<<"$entry"
    ok "$dest/$(basename "$path")" "$sum" || missing=1
done

if [ "$missing" = 1 ]; then
    tmp="$(mktemp -d "$LECTERN_CACHE_DIR/test-docs.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    echo "fetch-test-docs: downloading the pypdf 7.1.1, ocrmypdf 17.13.0 and python-docx 1.2.0 source releases" >&2
    python3 -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$tmp" \
        pypdf==7.1.1 ocrmypdf==17.13.0 python-docx==1.2.0 >&2 2>/dev/null \
      || python3 -m pip download -q --no-deps --no-binary :all: -d "$tmp" pypdf==7.1.1 ocrmypdf==17.13.0 python-docx==1.2.0 >&2
    for entry in "${files[@]}"; do
        read -r path sum <<<"$entry"
        archive="$tmp/${path%%/*}.tar.gz"
        tar xzf "$archive" -C "$tmp" "$path"
        if ! ok "$tmp/$path" "$sum"; then
            echo "fetch-test-docs: $path has sha256 $(sha256sum "$tmp/$path" | cut -d' ' -f1), expected $sum" >&2
            exit 1
        fi
        mv "$tmp/$path" "$dest/$(basename "$path")"
    done
fi
echo "LECTERN_TEST_DOCS_DIR=$dest"
