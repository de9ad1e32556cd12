#!/usr/bin/env bash
# Fetches the hard PDFs the parser tests use, from pinned source releases: pypdf's
# encrypted and malformed files, ocrmypdf's scanned ones (no text layer), and a Word
# document with tables (merged cells too) from python-docx's test files, and the Python
# tutorial's HTML pages from Debian's python3.11-doc (a documentation site to crawl). Each
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
  "ocrmypdf-17.13.0/tests/resources/cardinal.pdf ebd7b2233aea5f320562df9635901bbd8e734cb42c85defa1059163d4b1d6ccb"
  "ocrmypdf-17.13.0/tests/resources/multipage.pdf 07987c44650938fa8dcf08c0937691712fdd800669b4607c2c7e3fee21cb1f80"
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
# The Python 3.11 tutorial as HTML (Debian's python3.11-doc), served by the web-source
# tests as a real documentation site. Each page is checked by sha256, not the package: a
# Debian update that leaves the tutorial as it was still verifies.
tutorial="$dest/python-tutorial"
pages=(
  "appendix.html 447498d2ffabbe6397f140ee0581efe0b80ad25204cea86d680b898f54375baf"
  "appetite.html 3cabf4c1197e15806b262a0fa88c6e32bce0e4244774b365106156af3045bd4a"
  "classes.html 337afd39fcd650d0e324fb325e531aeb945340235843c2aadf21470ce646e3af"
  "controlflow.html 53409aecc8261868f5ed6612ba5fbe0ef38d2c673afb539b0011e952e09e2650"
  "datastructures.html a9f0c995d4da24154861bdc9f1c953b1acef82717b5fb59d37623858b7028a1d"
  "errors.html 5b1116a3355bf856bfe5e4a392cc900fc5359474586719526cdf46d90277ba36"
  "floatingpoint.html 127956480d04e631a886c797d20038db12f9331373d724a3528368b8cc25ac96"
  "index.html 57ad0ba21552c32ba8ea3af308507dc7f2eb9e6c1c240a57fae3bb0fdd9b89dc"
  "inputoutput.html 97e71b3c7d90463a1ae44d37d830705cd26bde95f3c0ec953e5464615cea0ccd"
  "interactive.html 2c9db94e6d4174a1c4449a9e23d3221719fc2844c3f63955754786b21ed35c29"
  "interpreter.html a3427acdba23a65e1ed91e2395af63816cf3144054f455d9b309a74ec7e4779c"
  "introduction.html 410e3a5e4a5ad075b83cbbea94edc846f11cc0da42f33d61a1e4dade610fb3c2"
  "modules.html 1f3d0a67082c38548a6e32191b71b7f4f1e06f206be292e0f1796a050cf4d3c2"
  "stdlib.html 2832292334ab1b7d666af0946d3eb55f54a4ae7f51a7931a8474e0adae431732"
  "stdlib2.html b3d7c20be1c7f8646ff69fb52074c8bf5faca4a98a9d32aea35c9f4ad4e50017"
  "venv.html ded1b0818b958bdf35f7d595efea0faa3d34d56a9c57d251197cd302079d484a"
  "whatnow.html 65e910ec0d4c4eb6b9e59ac3e0b1f3687cd82b00dd8ba99047cea58eaa95279f"
)
tutorial_missing=0
for entry in "${pages[@]}"; do
    read -r page sum <<<"$entry"
    ok "$tutorial/$page" "$sum" || tutorial_missing=1
done
if [ "$tutorial_missing" = 1 ]; then
    deb_tmp="$(mktemp -d "$LECTERN_CACHE_DIR/test-docs.XXXXXX")"
    echo "fetch-test-docs: downloading Debian's python3.11-doc for its tutorial pages" >&2
    # Package lists may be missing on a fresh machine: read them once and try again.
    (cd "$deb_tmp" && apt-get download -qq python3.11-doc >&2) \
        || { [ "$(id -u)" -eq 0 ] && apt-get update -qq >&2 && (cd "$deb_tmp" && apt-get download -qq python3.11-doc >&2); } \
        || { echo "fetch-test-docs: apt-get download python3.11-doc failed" >&2; rm -rf "$deb_tmp"; exit 1; }
    dpkg-deb -x "$deb_tmp"/python3.11-doc_*.deb "$deb_tmp/x"
    mkdir -p "$tutorial"
    for entry in "${pages[@]}"; do
        read -r page sum <<<"$entry"
        from="$deb_tmp/x/usr/share/doc/python3.11/html/tutorial/$page"
        if ! ok "$from" "$sum"; then
            echo "fetch-test-docs: tutorial/$page of python3.11-doc has changed (expected sha256 $sum)" >&2
            rm -rf "$deb_tmp"
            exit 1
        fi
        cp "$from" "$tutorial/$page"
    done
    rm -rf "$deb_tmp"
fi
echo "LECTERN_TEST_DOCS_DIR=$dest"
