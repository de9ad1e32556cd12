#!/usr/bin/env bash
# Fetch the PDFs of a dev QA set from pinned Debian 12 packages into a cache outside the
# checkout, checking the sha256 of each .deb and of each PDF. Sets:
#   english       (default) tests/data/dev-qa: three PDFs -> LECTERN_DEV_QA_DIR
#   multilingual  tests/data/dev-qa-multilingual: the LilyPond 2.24.1 Learning Manual in
#                 English, German, French and Spanish (learning-{en,de,fr,es}.pdf, from
#                 lilypond-doc-pdf 33 MB and lilypond-doc-pdf-{de,fr,es} 25-28 MB)
#                 -> LECTERN_DEV_QA_ML_DIR
#
# Usage:
#   scripts/fetch-dev-qa.sh [SET]              fetch if needed; print LECTERN_DEV_QA_DIR=...
#   scripts/fetch-dev-qa.sh --print-env [SET]  fetch nothing; print the line if all the
#                                              set's PDFs are present and valid (exit 1 if not)
#   eval "$(scripts/fetch-dev-qa.sh)"
#
# Files: ${LECTERN_CACHE_DIR:-/var/cache/lectern}/dev-qa/{gnuplot.pdf,sample-sigconf.pdf,
# auguide4-2.pdf}, or, when that cannot be written,
# ${XDG_CACHE_HOME:-$HOME/.cache}/lectern/dev-qa/ (the multilingual set: dev-qa-multilingual/
# likewise). When the set's PDFs are present with the right sha256 nothing is downloaded. Otherwise `apt-get download` fetches the
# pinned .deb packages of the missing PDFs (English: gnuplot-doc 3.4 MB,
# texlive-publishers-doc 213 MB) one at a time into a temporary folder, only the needed
# PDFs are extracted, and each .deb is deleted.
# `apt-get update` runs first (root only) when the pinned versions are not in the
# package lists. Needs apt-get, dpkg-deb, tar and sha256sum (any Debian 12).
#
# stdout holds only the NAME=value line; progress goes to stderr.
set -euo pipefail

readonly PROG=fetch-dev-qa

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2; }

print_only=0
set_name=english
for arg in "$@"; do
    case "$arg" in
    --print-env) print_only=1 ;;
    -h | --help) usage; exit 0 ;;
    english | multilingual) set_name=$arg ;;
    *) log "unknown argument: $arg"; usage; exit 2 ;;
    esac
done

# Per set: the folder, the variable printed, and the pinned packages ("package version
# sha256-of-.deb") and PDFs ("name package path-inside-the-package sha256").
case "$set_name" in
english)
    FOLDER=dev-qa
    VAR=LECTERN_DEV_QA_DIR
    DEBS="
gnuplot-doc 5.4.4+dfsg1-2 73fe1816a296594cf6a1d38528f8d740fd650f57a2cb62e029f7920fcd5b31f0
texlive-publishers-doc 2022.20230122-4 9b632913d4b0d0871bef41c414fc7ce1167e3bacb55b140901df0c95df1c5765
"
    PDFS="
gnuplot.pdf gnuplot-doc ./usr/share/doc/gnuplot/gnuplot.pdf df68dd0613f043141512fc4436d17aaf96727d5a758d85233915ac5056a97206
sample-sigconf.pdf texlive-publishers-doc ./usr/share/doc/texlive-doc/latex/acmart/samples/sample-sigconf.pdf a4b9040fb79f559ac91656a75645e724fd601899b4a10fbef5fd06aa4c68867f
auguide4-2.pdf texlive-publishers-doc ./usr/share/doc/texlive-doc/latex/revtex/auguide/auguide4-2.pdf 2ed74d48dc5f911297a716008f116fb8a29ba9199e1408424afbe336dbc2c565
"
    ;;
multilingual)
    FOLDER=dev-qa-multilingual
    VAR=LECTERN_DEV_QA_ML_DIR
    DEBS="
lilypond-doc-pdf 2.24.1-2 caf7a8b1a7936abf59e6e1f5e20342fc50ce867ea7cd67dd8228665c4f70e5a1
lilypond-doc-pdf-de 2.24.1-2 fd79780ab59b0dd9ba3dd6d4b1d04e66ea6b3b5a3cd1e7d61a1e87db41949b3d
lilypond-doc-pdf-fr 2.24.1-2 20f619c0a4cd45063d7090c746865ac4de3335287c05a20e20c19b0ed343a42a
lilypond-doc-pdf-es 2.24.1-2 b795b0395abb297615b371d5df316ef84c680471c1c3d599c1e44f5249392cc9
"
    PDFS="
learning-en.pdf lilypond-doc-pdf ./usr/share/doc/lilypond/html/Documentation/learning.pdf 4789fa6c4a57c97153baea611619648331db08a051fb078fa9f43167ec6fc728
learning-de.pdf lilypond-doc-pdf-de ./usr/share/doc/lilypond/html/Documentation/learning.de.pdf 70c2fe2435b3187b7b90021dd3d961040806df98f3c8f1836281cc273f34aa97
learning-fr.pdf lilypond-doc-pdf-fr ./usr/share/doc/lilypond/html/Documentation/learning.fr.pdf 4580fa037b5f328a2c52ac8fae9eb4d871c1512af0b8ec5ad4b390f8ea6e2359
learning-es.pdf lilypond-doc-pdf-es ./usr/share/doc/lilypond/html/Documentation/learning.es.pdf eb866394d3d67653f86112fccec7bf794d44eb802911b97139f13267cc2053dc
"
    ;;
esac
readonly FOLDER VAR DEBS PDFS

sha256_of() { sha256sum -- "$1" | cut -d' ' -f1; }
file_ok() { [ -f "$1" ] && [ "$(sha256_of "$1")" = "$2" ]; }

# True when all the set's PDFs are valid in DIR.
all_ok() {
    local dir=$1 name pkg path sha
    while read -r name pkg path sha; do
        [ -n "$name" ] || continue
        file_ok "$dir/$name" "$sha" || return 1
    done <<<"$PDFS"
}

PRIMARY="${LECTERN_CACHE_DIR:-/var/cache/lectern}/$FOLDER"
FALLBACK=""
if [ -n "${XDG_CACHE_HOME:-}" ]; then
    FALLBACK="$XDG_CACHE_HOME/lectern/$FOLDER"
elif [ -n "${HOME:-}" ]; then
    FALLBACK="$HOME/.cache/lectern/$FOLDER"
fi
CANDIDATES=("$PRIMARY")
[ -n "$FALLBACK" ] && [ "$FALLBACK" != "$PRIMARY" ] && CANDIDATES+=("$FALLBACK")

for d in "${CANDIDATES[@]}"; do
    if all_ok "$d"; then
        [ "$print_only" = 1 ] || log "$set_name set: all PDFs present in $d (sha256 ok), nothing to fetch"
        printf '%s=%q\n' "$VAR" "$d"
        exit 0
    fi
done
if [ "$print_only" = 1 ]; then
    log "$set_name dev QA PDFs not present (run $0 $set_name)"
    exit 1
fi

# --- fetch ------------------------------------------------------------------
for tool in apt-get dpkg-deb tar sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found (this script needs Debian 12 tools)"
done

DEST=""
for d in "${CANDIDATES[@]}"; do
    if mkdir -p -- "$d" 2>/dev/null && probe=$(mktemp -- "$d/.probe.XXXXXX" 2>/dev/null); then
        rm -f -- "$probe"
        [ "$d" = "$PRIMARY" ] || log "$PRIMARY is not writable; using $d"
        DEST=$d
        break
    fi
done
[ -n "$DEST" ] || die "no writable cache folder (tried: ${CANDIDATES[*]}); set LECTERN_CACHE_DIR"

TMP=""
cleanup() { if [ -n "$TMP" ]; then rm -rf -- "$TMP"; fi; }
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if command -v flock >/dev/null 2>&1; then
    exec 9>"$DEST/.lock"
    if ! flock -n 9; then
        log "waiting for another fetch-dev-qa run (lock $DEST/.lock)"
        flock 9
    fi
fi
# Holding the lock, any leftover scratch folder is from a killed run.
rm -rf -- "$DEST"/.fetch.* 2>/dev/null || true
if all_ok "$DEST"; then
    log "$set_name set: all PDFs present in $DEST (fetched meanwhile by another run)"
    printf '%s=%q\n' "$VAR" "$DEST"
    exit 0
fi

# The packages whose PDFs are missing or wrong.
needed=()
while read -r name pkg path sha; do
    [ -n "$name" ] || continue
    if ! file_ok "$DEST/$name" "$sha"; then
        if [ -e "$DEST/$name" ]; then
            log "$name: sha256 mismatch, will be replaced"
        else
            log "$name: missing"
        fi
        case " ${needed[*]-} " in *" $pkg "*) ;; *) needed+=("$pkg") ;; esac
    fi
done <<<"$PDFS"

deb_version() { awk -v p="$1" '$1 == p { print $2 }' <<<"$DEBS"; }
deb_sha() { awk -v p="$1" '$1 == p { print $3 }' <<<"$DEBS"; }

# Make sure the pinned versions are known to apt; refresh the lists once if not.
lists_ok() {
    local pkg
    for pkg in "${needed[@]}"; do
        apt-cache show "$pkg=$(deb_version "$pkg")" >/dev/null 2>&1 || return 1
    done
}
if ! lists_ok; then
    if [ "$(id -u)" = 0 ]; then
        log "pinned versions not in the package lists; running apt-get update"
        apt-get update >&2 || die "apt-get update failed"
        lists_ok || die "pinned versions not available from apt (${needed[*]}); see tests/data/$FOLDER/README.md: do not swap versions"
    else
        die "pinned versions not in the package lists and not root: run 'apt-get update' as root first"
    fi
fi

TMP=$(mktemp -d -- "$DEST/.fetch.XXXXXX")
# apt-get download, run as root, drops to the _apt user, which must be able to write here.
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then
    chown _apt -- "$TMP" 2>/dev/null || true
fi
mkdir -p -- "$TMP/pdf"

# One package at a time, so that at most one .deb is on disk at once.
for pkg in "${needed[@]}"; do
    ver=$(deb_version "$pkg")
    want=$(deb_sha "$pkg")
    log "downloading $pkg=$ver"
    (cd "$TMP" && apt-get download "$pkg=$ver" >&2) || die "apt-get download $pkg=$ver failed"
    deb=$(find "$TMP" -maxdepth 1 -type f -name "${pkg}_*.deb" | head -n 1)
    [ -n "$deb" ] || die "apt-get download produced no .deb for $pkg"
    got=$(sha256_of "$deb")
    if [ "$got" != "$want" ]; then
        rm -f -- "$deb"
        die "sha256 mismatch for $(basename -- "$deb"): expected $want, got $got (file deleted)"
    fi
    log "sha256 ok: $(basename -- "$deb")"
    # Extract only this package's PDFs.
    members=()
    while read -r name p path sha; do
        if [ -n "$name" ] && [ "$p" = "$pkg" ]; then members+=("$path"); fi
    done <<<"$PDFS"
    mkdir -p -- "$TMP/root"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$TMP/root" -- "${members[@]}" \
        || die "could not extract ${members[*]} from $(basename -- "$deb")"
    rm -f -- "$deb"
    while read -r name p path sha; do
        if [ -z "$name" ] || [ "$p" != "$pkg" ]; then continue; fi
        src="$TMP/root/${path#./}"
        [ -f "$src" ] || die "$path not found in $pkg"
        got=$(sha256_of "$src")
        if [ "$got" != "$sha" ]; then
            rm -f -- "$src"
            die "sha256 mismatch for $name: expected $sha, got $got (file deleted)"
        fi
        log "sha256 ok: $name"
        mv -f -- "$src" "$TMP/pdf/$name"
    done <<<"$PDFS"
done

# Install (same file system: atomic renames), then check them all in place.
for f in "$TMP"/pdf/*.pdf; do
    [ -e "$f" ] || continue
    chmod 0644 -- "$f"
    mv -f -- "$f" "$DEST/$(basename -- "$f")"
done
rm -rf -- "$TMP"
TMP=""
all_ok "$DEST" || die "the PDFs in $DEST do not verify after install"
log "done: $DEST"
printf '%s=%q\n' "$VAR" "$DEST"
