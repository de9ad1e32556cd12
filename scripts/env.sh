# Sourced by the other scripts: where builds and caches live, outside the checkout, so
# that a fresh clone rebuilds incrementally. Override with CARGO_TARGET_DIR or
# LECTERN_CACHE_DIR.
if [ -z "${LECTERN_CACHE_DIR:-}" ]; then
    if mkdir -p /var/cache/lectern 2>/dev/null && [ -w /var/cache/lectern ]; then
        LECTERN_CACHE_DIR=/var/cache/lectern
    else
        LECTERN_CACHE_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/lectern"
    fi
fi
export LECTERN_CACHE_DIR
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$LECTERN_CACHE_DIR/target}"
mkdir -p "$LECTERN_CACHE_DIR" "$CARGO_TARGET_DIR"
# Two cores build faster with fewer debug symbols and no incremental cache churn in CI.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# llama.cpp is compiled for the CPU features of the machine that builds, as its own
# GGML_NATIVE build would be (llama-cpp-sys-2 otherwise builds without AVX2 and decodes ~10%
# slower). LECTERN_PORTABLE=1 builds for any x86-64 machine instead, as the Dockerfile does.
if [ "$(uname -m)" = x86_64 ] && [ -z "${LECTERN_PORTABLE:-}" ] && [ -r /proc/cpuinfo ]; then
    lectern_cpu_flags=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
    for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 sse4_2:SSE42 avx_vnni:AVX_VNNI \
        avx512f:AVX512 avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16 avx512vbmi:AVX512_VBMI; do
        case "$lectern_cpu_flags" in *" ${pair%%:*} "*) export "GGML_${pair#*:}=ON" ;; esac
    done
    unset lectern_cpu_flags pair
fi

# Installs missing system packages and fetches the given asset groups (default: core),
# exporting the paths they print (LECTERN_ORT_DYLIB, ...).
lectern_prepare() {
    scripts/setup-system.sh
    local lines
    lines="$(scripts/fetch-assets.sh "${@:-core}")"
    set -a
    eval "$lines"
    set +a
}

# The embedding engine of the settings (LECTERN_EMBEDDING__ENGINE, default onnx): fetches
# its model; sets `engine`. The engine's own defaults (`Settings::for_engine`) find the
# fetched model, so MiniLM's folder, which `lectern_prepare core` exports, is dropped.
lectern_embedding_engine() {
    engine="${LECTERN_EMBEDDING__ENGINE:-onnx}"
    case "$engine" in
    e5)
        lectern_prepare e5
        unset LECTERN_EMBED_MODEL_DIR
        ;;
    gguf)
        lectern_prepare gemma
        unset LECTERN_EMBED_MODEL_DIR
        ;;
    esac
}

# Builds `lectern` for a measurement and sets `bin` to it: a release build, or with
# LECTERN_EVAL_PROFILE=debug the test build (hot dependencies optimised; quality figures
# are the same, latencies a little higher), with no rebuild after scripts/test.sh.
lectern_eval_bin() {
    local profile="${LECTERN_EVAL_PROFILE:-release}"
    # LECTERN_BIN (as for the drills): a binary kept aside, a copy, so that the code can
    # be rebuilt while a long measurement runs with the code it started with.
    if [ -n "${LECTERN_BIN:-}" ]; then
        bin="$LECTERN_BIN"
        return
    fi
    if [ "$profile" = debug ]; then
        cargo test --workspace --locked --no-run >&2
    else
        cargo build --release --locked -p lectern >&2
    fi
    bin="$CARGO_TARGET_DIR/$profile/lectern"
}

# Prints settings in force for `$bin` (`lectern config`: the engine's defaults, then the
# file, then the environment), joined by "-", read with one call: e.g.
# `lectern_setting ingest.chunk_tokens index.rrf_k` prints `128-60`.
lectern_setting() {
    "$bin" config | python3 -c 'import json, sys
config = json.load(sys.stdin)
def setting(path):
    value = config
    for key in path.split("."):
        value = value[key]
    return str(value).lower() if isinstance(value, bool) else str(value)
print("-".join(setting(path) for path in sys.argv[1:]))' "$@"
}

# Starts `BIN --data-dir DATA serve` on 127.0.0.1:PORT in the background, its output
# appended to LOG, and waits until /ready answers; sets `pid`. A server that dies or does
# not become ready in two minutes ends the calling script with the end of its log.
lectern_serve() {
    local bin=$1 data=$2 port=$3 log=$4
    "$bin" --data-dir "$data" serve --bind "127.0.0.1:$port" >>"$log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do
        curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.2
    done
    echo "lectern serve did not become ready; the end of its log:" >&2
    tail -n 30 "$log" >&2
    exit 1
}
