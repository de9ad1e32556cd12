#!/usr/bin/env bash
# Makes here, on a machine without a GPU, everything the GPU check needs, and packs it into
# carries for the device tool (each call carries at most 64 MiB, the working tree included).
#
# Route (b), llama.cpp's dynamic backends:
#   here        `cargo build --release -p lectern --features dynamic-backends`: Lectern with
#               llama.cpp as shared libraries and its CPU backend as run-time modules
#               (GGML_BACKEND_DL, one module per x86 level). No CUDA here.
#   carried     the stripped binary and those libraries; the llama.cpp source that
#               llama-cpp-sys-2 vendors (the very same files), with llama.cpp's llama-bench
#               and batched-bench sources beside it; ONNX Runtime, MiniLM and SmolLM2 (in
#               two parts); the `gguf` wheel; a small corpus.
#   there       scripts/gpu-check.sh compiles libggml-cuda.so for sm_90 on the machine's 16
#               cores (nvcc 13.0 and CMake are there), puts it beside the binary, and runs
#               the checks. Why this route, and not CUDA compiled here from PyPI's CUDA
#               wheels (a) or Vulkan (c): docs/BENCHMARKS.md, "Generation on an NVIDIA GPU".
#
# Usage:
#   scripts/build-gpu.sh            build (cargo), bundle, pack, write .gpu/carry-*
#   scripts/build-gpu.sh --plan     print what it would build and where; build nothing
#   scripts/build-gpu.sh --no-cargo pack an existing build (GPU_BUILD_BIN, default the
#                                   target dir's release/lectern, must be a
#                                   dynamic-backends build)
# Then: scripts/gpu-check.sh --dry-run, and the device calls it prints.
#
# Environment:
#   GPU_BUILD_PROFILE     release (default) or dev. dev reuses the test suite's build of the
#                         ~600 dependencies (minutes instead of an hour on two cores); the
#                         dev profile optimises llama.cpp, its bindings and the generation
#                         loop (Cargo.toml), so decoding runs as in a release build, while
#                         the rest of Lectern (retrieval, HTTP) runs unoptimised.
#   GPU_BUILD_TARGET_DIR  cargo's target dir for this build; default $CARGO_TARGET_DIR,
#                         shared with the default build: target/<profile>/lectern is the
#                         dynamic-backends build until the next plain build, which only
#                         relinks (both feature sets' artifacts stay side by side).
#   GPU_BUILD_BIN         the binary to pack with --no-cargo.
# Output: $LECTERN_CACHE_DIR/gpu/{bundle,payload,host-pylib,wheels}, .gpu/carry-1..N here
# (ignored by git through .git/info/exclude).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
PROG=build-gpu
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }

plan=0 cargo=1
for a in "$@"; do
    case "$a" in
    --plan) plan=1 ;;
    --no-cargo) cargo=0 ;;
    -h | --help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) die "unknown argument $a (see --help)" ;;
    esac
done

G=$LECTERN_CACHE_DIR/gpu
T=${GPU_BUILD_TARGET_DIR:-$CARGO_TARGET_DIR}
PROFILE=${GPU_BUILD_PROFILE:-release}
case "$PROFILE" in
release) PDIR=release CARGO_CMD=(cargo build --release --locked -p lectern --features dynamic-backends) ;;
# The workspace, as the test suite builds it, so that features unify alike and the
# dependencies it built are reused.
dev) PDIR=debug CARGO_CMD=(cargo build --workspace --locked --features lectern/dynamic-backends --bin lectern) ;;
*) die "GPU_BUILD_PROFILE is release or dev, not $PROFILE" ;;
esac
BIN=${GPU_BUILD_BIN:-$T/$PDIR/lectern}
lock_version() { awk -v n="$1" '$0 == "name = \"" n "\"" {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock; }
SYS_VER=$(lock_version llama-cpp-sys-2)
LCP=llama_cpp_python-0.3.36 # llama.cpp's tools' source, as scripts/build-llama-server.sh
LCP_SHA=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
GGUF_WHEEL=gguf-0.19.0-py3-none-any.whl
SMOL_SHA=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
LIMIT=$((64 * 1024 * 1024))
MARGIN=$((3 * 1024 * 1024)) # the working tree may grow a little before the calls

cat >&2 <<EOF
$PROG: route (b), llama.cpp's dynamic backends
  1. here:  CARGO_TARGET_DIR=$T ${CARGO_CMD[*]}
            -> $BIN, llama.cpp as shared libraries and CPU modules (llama-cpp-sys-2 $SYS_VER,
               GGML_BACKEND_DL, GGML_CPU_ALL_VARIANTS; no CUDA)
  2. here:  bundle  -> $G/bundle (stripped lectern, libllama/libggml*.so, libggml-cpu-*.so)
  3. here:  source  -> llama.cpp of llama-cpp-sys-2 $SYS_VER (from cargo's registry), plus
               tools/llama-bench and tools/batched-bench of $LCP's llama.cpp
  4. here:  pack    -> $G/payload/{early.tar.xz,bulk.tar.xz}, split into .gpu/carry-1..N
               (each under 64 MiB with the working tree)
  5. there: scripts/gpu-check.sh --stage 1..N: libggml-cuda.so (sm_90) compiled on the GPU
               machine from the carried source, then the checks
EOF
[ "$plan" = 1 ] && exit 0

command -v xz >/dev/null || die "xz is needed (apt-get install -y xz-utils)"
mkdir -p "$G"

# -- 1. cargo ------------------------------------------------------------------------------
if [ "$cargo" = 1 ]; then
    log "building: CARGO_TARGET_DIR=$T ${CARGO_CMD[*]}"
    CARGO_TARGET_DIR=$T "${CARGO_CMD[@]}"
fi
[ -x "$BIN" ] || die "no $BIN (build it: CARGO_TARGET_DIR=$T ${CARGO_CMD[*]})"
# The llama-cpp-sys-2 build of this binary: the one with backend modules, newest first.
SYS_OUT=""
# shellcheck disable=SC2045 # newest first; cargo's hashed folder names have no spaces
for d in $(ls -dt "$T/$PDIR"/build/llama-cpp-sys-2-*/out 2>/dev/null); do
    if ls "$d"/backends/libggml-cpu-*.so >/dev/null 2>&1 && ls "$d"/lib*/libggml-base.so* >/dev/null 2>&1; then
        SYS_OUT=$d
        break
    fi
done
[ -n "$SYS_OUT" ] || die "no dynamic-backends build of llama-cpp-sys-2 under $T/$PDIR/build (run without --no-cargo)"
log "llama.cpp libraries and modules from $SYS_OUT"

# -- 2. bundle -------------------------------------------------------------------------------
rm -rf "$G/bundle" && mkdir -p "$G/bundle/fallback"
strip -o "$G/bundle/lectern" "$BIN"
cp -P "$SYS_OUT"/lib*/lib*.so* "$G/bundle/"
cp -P "$SYS_OUT"/backends/*.so "$G/bundle/"
for f in "$G"/bundle/*.so*; do [ -L "$f" ] || strip --strip-unneeded "$f"; done
gomp=$(ldconfig -p | awk '/libgomp.so.1 .*x86-64/ {print $NF; exit}')
[ -n "$gomp" ] && cp -L "$gomp" "$G/bundle/fallback/libgomp.so.1"
missing=$(LD_LIBRARY_PATH="$G/bundle" ldd "$G/bundle/lectern" | grep 'not found' || true)
[ -z "$missing" ] || die "the bundled lectern misses libraries: $missing"
for f in "$G"/bundle/libggml-cpu-*.so; do
    m=$(LD_LIBRARY_PATH="$G/bundle:$G/bundle/fallback" ldd "$f" | grep 'not found' || true)
    [ -z "$m" ] || die "$(basename "$f") misses libraries: $m"
done
{
    echo "lectern $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo '+changes'), profile $PROFILE, features dynamic-backends, built $(date -u +%FT%TZ)"
    echo "llama-cpp-sys-2 $SYS_VER ($SYS_OUT)"
    (cd "$G/bundle" && find . -type f ! -name BUILD-INFO | sort | xargs sha256sum)
} >"$G/bundle/BUILD-INFO"
log "bundle: $(du -sh "$G/bundle" | cut -f1) in $G/bundle"

# -- 3. early payload: llama.cpp source, wheel, tokenizer, corpus --------------------------
E=$G/stage/early
rm -rf "$G/stage" && mkdir -p "$E/wheels" "$E/corpus"
crate=""
for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/llama-cpp-sys-2-"$SYS_VER"; do [ -d "$d/llama.cpp" ] && crate=$d; done
[ -n "$crate" ] || die "llama-cpp-sys-2 $SYS_VER is not in cargo's registry (cargo fetch --locked)"
# The whole vendored tree but other backends' sources, docs, models and tests.
tar -C "$crate" -cf - \
    --exclude='llama.cpp/ggml/src/ggml-'{vulkan,metal,sycl,opencl,cann,hexagon,webgpu,openvino,et,virtgpu,musa,zdnn,zendnn} \
    --exclude=llama.cpp/docs --exclude=llama.cpp/models --exclude=llama.cpp/gguf-py \
    --exclude=llama.cpp/tests --exclude=llama.cpp/examples --exclude=llama.cpp/tools \
    llama.cpp | tar -x -C "$E"
mkdir -p "$E/llama.cpp/tools"
lcp_archive=$LECTERN_CACHE_DIR/llama-cpp/.build-$LCP/$LCP.tar.gz
if [ ! -f "$lcp_archive" ] || [ "$(sha256sum "$lcp_archive" | cut -d' ' -f1)" != "$LCP_SHA" ]; then
    mkdir -p "$(dirname "$lcp_archive")"
    python3 -m pip download -q --no-deps --no-binary :all: -d "$(dirname "$lcp_archive")" "${LCP/_cpp_python-/-cpp-python==}" >&2
fi
[ "$(sha256sum "$lcp_archive" | cut -d' ' -f1)" = "$LCP_SHA" ] || die "$lcp_archive has the wrong sha256"
tar -xzf "$lcp_archive" -C "$E/llama.cpp/tools" --strip-components=4 \
    "$LCP/vendor/llama.cpp/tools/llama-bench" "$LCP/vendor/llama.cpp/tools/batched-bench"
cat >"$E/llama.cpp/tools/CMakeLists.txt" <<'EOF'
# Written by Lectern's scripts/build-gpu.sh: only the two benchmark tools, whose sources come
# from llama-cpp-python 0.3.36's llama.cpp (llama-cpp-sys-2 does not ship tool sources).
find_package(Threads REQUIRED)
llama_add_compile_flags()
add_subdirectory(llama-bench)
add_subdirectory(batched-bench)
EOF
{
    echo "llama.cpp vendored by llama-cpp-sys-2 $SYS_VER (ggml $(awk -F'[ )]' '/set\(GGML_VERSION_(MAJOR|MINOR|PATCH)/ {printf "%s.", $2}' "$crate/llama.cpp/ggml/CMakeLists.txt" | sed 's/\.$//'))"
    echo "tools/llama-bench and tools/batched-bench from $LCP (sha256 $LCP_SHA)"
} >"$E/llama.cpp/LECTERN-SOURCE.txt"

# The gguf wheel (for the machine) and a host copy of gguf + numpy (for the tokenizer here
# and the dry run).
if [ ! -f "$G/wheels/$GGUF_WHEEL" ]; then
    python3 -m pip download -q --no-deps --only-binary :all: -d "$G/wheels" gguf==0.19.0 >&2
fi
cp "$G/wheels/$GGUF_WHEEL" "$E/wheels/"
if ! PYTHONPATH="$G/host-pylib" python3 -c 'import gguf, numpy' 2>/dev/null; then
    rm -rf "$G/host-pylib" "$G/host-wheels" && mkdir -p "$G/host-wheels"
    pyver=$(python3 -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')
    python3 -m pip download -q --no-deps --only-binary :all: -d "$G/host-wheels" \
        "numpy==2.3.5" "pyyaml==6.0.3" "tqdm==4.67.1" >&2 || die "cannot fetch numpy for python $pyver"
    python3 -m pip install -q --no-index --no-deps --target "$G/host-pylib" \
        "$G"/host-wheels/*.whl "$G/wheels/$GGUF_WHEEL" >&2
fi
set -a
eval "$(scripts/fetch-assets.sh core llm)"
set +a
[ "$(sha256sum "$LECTERN_SMOLLM2_MODEL" | cut -d' ' -f1)" = "$SMOL_SHA" ] || die "SmolLM2 has the wrong sha256"
PYTHONPATH="$G/host-pylib" python3 scripts/gpu/make_random_gguf.py --tokenizer-from "$LECTERN_SMOLLM2_MODEL" \
    --out "$E/tokenizer.gguf" --tokenizer-only
for f in Apache-2.0 MPL-2.0 GPL-3; do
    [ -f "/usr/share/common-licenses/$f" ] || die "no /usr/share/common-licenses/$f (Debian's base-files)"
    cp "/usr/share/common-licenses/$f" "$E/corpus/$f.txt"
done

# -- 4. bulk payload: bundle and assets, laid out as the machine uses them ----------------
B=$G/stage/bulk
assets=$(dirname "$(dirname "$LECTERN_SMOLLM2_MODEL")")
mkdir -p "$B/cache/assets/llm" "$B/cache/assets/onnxruntime"
cp -a "$G/bundle" "$B/bundle"
cp -al "$LECTERN_EMBED_MODEL_DIR" "$B/cache/assets/minilm-l6-v2-int8" 2>/dev/null || cp -a "$LECTERN_EMBED_MODEL_DIR" "$B/cache/assets/minilm-l6-v2-int8"
ln -f "$LECTERN_ORT_DYLIB" "$B/cache/assets/onnxruntime/" 2>/dev/null || cp "$LECTERN_ORT_DYLIB" "$B/cache/assets/onnxruntime/"
ln -f "$LECTERN_SMOLLM2_MODEL" "$B/cache/assets/llm/" 2>/dev/null || cp "$LECTERN_SMOLLM2_MODEL" "$B/cache/assets/llm/"
log "assets from $assets"

P=$G/payload
rm -rf "$P" && mkdir -p "$P"
log "compressing (xz -6, a few minutes on two cores)"
tar -C "$E" -cf - . | xz -6 -T0 >"$P/early.tar.xz"
tar -C "$B" -cf - bundle cache | xz -6 -T0 >"$P/bulk.tar.xz"
early=$(stat -c %s "$P/early.tar.xz")
bulk=$(stat -c %s "$P/bulk.tar.xz")

# -- 5. carries ------------------------------------------------------------------------------
grep -qxF '/.gpu/' .git/info/exclude 2>/dev/null || { mkdir -p .git/info && echo '/.gpu/' >>.git/info/exclude; }
tree=$({ git ls-files -z -co --exclude-standard | xargs -0 -r stat -c %s -- 2>/dev/null || true; } | awk '{s+=$1} END {print s+0}')
room=$(((LIMIT - tree - MARGIN) / 1048576 * 1048576))
[ "$room" -gt "$early" ] || die "the working tree ($tree bytes) leaves no room for the carries"
set_id=$(cat "$P/early.tar.xz" "$P/bulk.tar.xz" | sha256sum | cut -c1-16)
rm -rf .gpu/carry-* .gpu/ref
k=1 off=0 first=$((room - early))
while [ "$off" -lt "$bulk" ]; do
    d=.gpu/carry-$k
    mkdir -p "$d"
    len=$room
    [ "$k" = 1 ] && { len=$first; cp "$P/early.tar.xz" "$d/"; }
    [ $((off + len)) -gt "$bulk" ] && len=$((bulk - off))
    dd if="$P/bulk.tar.xz" of="$d/bulk.part-$(printf %02d "$k")" bs=1M iflag=skip_bytes,count_bytes \
        skip="$off" count="$len" status=none
    off=$((off + len))
    k=$((k + 1))
done
n=$((k - 1))
for k in $(seq 1 "$n"); do
    echo "$set_id $n" >".gpu/carry-$k/SET"
    (cd ".gpu/carry-$k" && find . -maxdepth 1 -type f \( -name '*.xz' -o -name 'bulk.part-*' \) -printf '%f\n' \
        | sort | xargs sha256sum -- >MANIFEST)
done

log "payload: early $early bytes, bulk $bulk bytes (bundle $(du -sb "$G/bundle" | cut -f1) raw); working tree $tree bytes"
for k in $(seq 1 "$n"); do
    log "  .gpu/carry-$k: $(du -sb ".gpu/carry-$k" | cut -f1) bytes"
done
cat >&2 <<EOF
$PROG: $n carries of set $set_id. Next:
  scripts/gpu-check.sh --dry-run        (here: checks them, runs the CPU side, writes .gpu/ref)
Then, where a device machine is lent, back to back (it goes back 30 s after each call):
EOF
for k in $(seq 1 "$n"); do
    c="\".gpu/carry-$k\""
    [ "$k" = "$n" ] && c="$c, \".gpu/ref\""
    t=90
    [ "$k" = "$n" ] && t=600
    echo "  run(command=\"bash scripts/gpu-check.sh --stage $k --of $n\", carry=[$c], timeout_s=$t)" >&2
done
