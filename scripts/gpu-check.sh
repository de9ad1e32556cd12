#!/usr/bin/env bash
# Lectern's language model on an NVIDIA GPU (an H200 of the device machine), checked in one
# prepared script: what scripts/build-gpu.sh made here travels in carries of under 64 MiB
# (.gpu/carry-1 ... carry-N, one per call of the device tool), and this script, run once per
# carry on the machine, joins them and checks:
#
#   build        llama.cpp's CUDA backend (libggml-cuda.so, sm_90) from the very llama.cpp
#                source llama-cpp-sys-2 vendors, plus llama-bench and llama-batched-bench,
#                compiled on the machine's 16 cores (started by the first call, in the
#                background, while the other carries travel)
#   correctness  SmolLM2-135M: `lectern ask --json` over a small real corpus (three licence
#                texts), greedy, CPU build (no GPU module) vs GPU build (llm.gpu_layers = 99):
#                same answers, same citations
#   speed        a random-weight GGUF with Llama-3-8B's shapes (Q4_0, 4.2 GiB, made on the
#                machine by scripts/gpu/make_random_gguf.py with the carried `gguf` wheel):
#                Lectern's time to first token on a ~2,000-token RAG prompt, decode tokens/s
#                of one stream, aggregate tokens/s of 8 answers at once (llm.parallel = 8),
#                beside llama-bench and llama-batched-bench on the same file
#   reports      layers offloaded and GPU memory from Lectern's start-up log, nvidia-smi
#
# Usage:
#   scripts/gpu-check.sh --dry-run          here, no GPU: checks the carries (files, sha256,
#                                           sizes against the 64 MiB limit), runs every stage
#                                           as the machine would minus the CUDA parts, and the
#                                           CPU side: ingest, CPU answers (kept as the
#                                           reference the machine compares with), prompt
#                                           calibration, the speed harness on a tiny random
#                                           model on the CPU
#   scripts/gpu-check.sh --stage K --of N   on the device machine, call K of N (see below)
#
# The calls (scripts/build-gpu.sh prints them with the right N), back to back: the machine
# goes back 30 s after a call, and with it what earlier calls left there:
#   run(command="bash scripts/gpu-check.sh --stage 1 --of 3", carry=[".gpu/carry-1"], timeout_s=90)
#   run(command="bash scripts/gpu-check.sh --stage 2 --of 3", carry=[".gpu/carry-2"], timeout_s=90)
#   run(command="bash scripts/gpu-check.sh --stage 3 --of 3", carry=[".gpu/carry-3", ".gpu/ref"], timeout_s=600)
# The last call ends within GPU_CHECK_BUDGET_S (default 540) seconds and writes
# summary.md, results.json and logs.tar.gz to $OUT. Exit status 75 from the last call:
# the CUDA build was still running; make the same call again at once (nothing to carry
# again). Exit status 3: an earlier carry is missing there (the machine went back between
# calls): start again from call 1.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 1
STARTED=$(date +%s)
PROG=gpu-check

mode="" stage=0 of=0
while [ $# -gt 0 ]; do
    case "$1" in
    --dry-run) mode=dry ;;
    --stage) stage=$2; shift ;;
    --of) of=$2; shift ;;
    -h | --help) sed -n '2,/^set -uo/{/^set -uo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) echo "$PROG: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$mode" ] || { [ "$stage" -ge 1 ] && [ "$of" -ge "$stage" ] && mode=device; } \
    || { echo "$PROG: say --dry-run, or --stage K --of N (see --help)" >&2; exit 2; }

LIMIT=$((64 * 1024 * 1024))
BUDGET=${GPU_CHECK_BUDGET_S:-540}
CARRY=$ROOT/.gpu
if [ "$mode" = dry ]; then
    . scripts/env.sh
    G=$LECTERN_CACHE_DIR/gpu
    W=${GPU_CHECK_WORK:-$G/dry}
    OUT=${OUT:-$G/dry-out}
    HOST_PY=$G/host-pylib
else
    W=${GPU_CHECK_WORK:-/tmp/lectern-gpu}
    OUT=${OUT:-$W/out}
fi
RES=$W/results
mkdir -p "$W" "$OUT"

log() { printf '%s [%4ss] %s\n' "$PROG" "$(($(date +%s) - STARTED))" "$*" >&2; }
step() { log "$*"; mkdir -p "$RES"; printf '[%4ss] %s\n' "$(($(date +%s) - STARTED))" "$*" >>"$RES/steps.txt"; }
IN_LAST=0
die() { # MESSAGE [STATUS]; in the last stage the summary is written all the same
    log "error: $1"
    if [ "$IN_LAST" = 1 ]; then IN_LAST=0; step "stopped: $1"; report; fi
    exit "${2:-1}"
}
left() { echo $((BUDGET - ($(date +%s) - STARTED))); }
sha_of() { sha256sum "$1" | cut -d' ' -f1; }

# xz, or Python's lzma where the machine has no xz.
unxz_stream() {
    if command -v xz >/dev/null; then xz -d -T0 -c; else
        python3 -c 'import lzma,shutil,sys; shutil.copyfileobj(lzma.open(sys.stdin.buffer), sys.stdout.buffer, 1<<20)'
    fi
}

# ---------------------------------------------------------------------------------------
# Carries: each .gpu/carry-K holds MANIFEST (sha256sum lines), SET ("<id> <N>") and its
# pieces: early.tar.xz (call 1 only) and bulk.part-KK.
# ---------------------------------------------------------------------------------------
take_carry() {
    local k=$1 d="$CARRY/carry-$1" set
    [ -f "$d/MANIFEST" ] && [ -f "$d/SET" ] \
        || die "carry $k is not here ($d): this call needs carry=[\".gpu/carry-$k\"]" 3
    (cd "$d" && sha256sum --quiet -c MANIFEST) || die "carry $k does not match its MANIFEST" 3
    set=$(cut -d' ' -f1 "$d/SET")
    if [ "$mode" = device ] && [ "$(cut -d' ' -f2 "$d/SET")" != "$of" ]; then
        die "this build has $(cut -d' ' -f2 "$d/SET") carries, not $of: call with --of $(cut -d' ' -f2 "$d/SET") (scripts/build-gpu.sh printed the calls)" 2
    fi
    if [ "$k" -gt 1 ]; then
        [ "$(cat "$W/set" 2>/dev/null)" = "$set" ] \
            || die "carry $k belongs to another build than the carries before it, or call 1 did not run on this machine (it went back between calls?): start again from call 1" 3
    fi
    mkdir -p "$W/pieces"
    cp -f "$d"/bulk.part-* "$d"/early.tar.xz "$W/pieces/" 2>/dev/null
    echo "$set" >"$W/set"
    touch "$W/stage-$k.ok"
}

# Sizes of what one call carries: the working tree that always travels plus the carry.
tree_bytes() {
    git ls-files -z -co --exclude-standard 2>/dev/null | xargs -0 -r stat -c %s -- 2>/dev/null \
        | awk '{s+=$1} END {print s+0}'
}

check_carries() {
    local n tree k total=0 bad=0 sz ref=0
    [ -f "$CARRY/carry-1/SET" ] || die "no carries in $CARRY: run scripts/build-gpu.sh first"
    n=$(cut -d' ' -f2 "$CARRY/carry-1/SET")
    git check-ignore -q "$CARRY/carry-1/SET" \
        || die ".gpu/ is not ignored by git: every call would send it whole (add /.gpu/ to .git/info/exclude)"
    tree=$(tree_bytes)
    [ -d "$CARRY/ref" ] && ref=$(du -sb "$CARRY/ref" | cut -f1)
    printf '%s: %-28s %12s\n' "$PROG" "working tree (every call)" "$tree" | tee "$W.carries.txt" >&2
    for k in $(seq 1 "$n"); do
        [ -f "$CARRY/carry-$k/MANIFEST" ] || { log "carry $k is missing"; bad=1; continue; }
        (cd "$CARRY/carry-$k" && sha256sum --quiet -c MANIFEST) || { log "carry $k: sha256 mismatch"; bad=1; }
        [ "$(cut -d' ' -f1 "$CARRY/carry-$k/SET")" = "$(cut -d' ' -f1 "$CARRY/carry-1/SET")" ] \
            || { log "carry $k is from another build"; bad=1; }
        sz=$(du -sb "$CARRY/carry-$k" | cut -f1)
        [ "$k" = "$n" ] && sz=$((sz + ref))
        total=$((total + sz))
        printf '%s: call %d carries %12s bytes, with the tree %12s of %s (%s)\n' "$PROG" "$k" "$sz" \
            "$((sz + tree))" "$LIMIT" "$([ $((sz + tree)) -lt $LIMIT ] && echo ok || echo OVER)" | tee -a "$W.carries.txt" >&2
        [ $((sz + tree)) -lt $LIMIT ] || bad=1
    done
    log "$n calls, $total bytes carried in all"
    [ "$bad" = 0 ] || die "the carries are not fit to travel (see above): run scripts/build-gpu.sh again"
    echo "$n"
}

# ---------------------------------------------------------------------------------------
# Stage 1: unpack the early carry, check the machine, start the CUDA build and the 8B file.
# ---------------------------------------------------------------------------------------
gguf_path() {
    local free
    free=$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')
    if [ "$mode" = dry ]; then
        echo "$W/random-tiny-q4_0.gguf"
    elif [ "${free:-0}" -gt $((12 * 1024 * 1024)) ]; then
        echo /dev/shm/lectern-gpu-llama3-8b-q4_0.gguf
    else
        echo "$W/llama3-8b-q4_0.gguf"
    fi
}

# A call 1 made again on a machine still warm: the GGUF writer and the CUDA build that the
# earlier call 1 started (each the leader of its own session, setsid) would go on writing
# into the new $W/build and the same GGUF path; end them first (their process groups).
stop_background() {
    local f pid
    for f in "$W/gguf.pid" "$W/build.pid"; do
        pid=$(cat "$f" 2>/dev/null) || continue
        [ -n "$pid" ] && kill -- "-$pid" 2>/dev/null && log "stopped the earlier call's job $(basename "$f" .pid) ($pid)"
    done
    return 0
}

stage_one() {
    step "stage 1: unpacking the early carry"
    rm -rf "$W/early" && mkdir -p "$W/early"
    unxz_stream <"$W/pieces/early.tar.xz" | tar -x -C "$W/early" || die "cannot unpack early.tar.xz"
    {
        echo "date: $(date -u +%FT%TZ)"
        echo "cores: $(nproc); memory: $(awk '/MemTotal/ {print int($2/1048576) " GiB"}' /proc/meminfo)"
        echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
        echo "disk free: $(df -Ph "$W" | awk 'NR==2 {print $4}'); /dev/shm free: $(df -Ph /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')"
        command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
        for t in nvcc cmake ninja xz zstd python3 gcc g++; do printf '%s: %s\n' "$t" "$(command -v "$t" || echo missing)"; done
        python3 -c 'import numpy, yaml, tqdm, requests; print("python:", __import__("sys").version.split()[0], "numpy", numpy.__version__)' 2>&1
        ldconfig -p 2>/dev/null | grep -E 'libgomp.so.1|libcuda.so.1|libcublas.so' | head -5
    } >"$W/preflight.txt" 2>&1
    cat "$W/preflight.txt" >&2
    mkdir -p "$W/py"
    if [ "$mode" = dry ]; then
        cp -a "$HOST_PY/." "$W/py/" 2>/dev/null || die "no $HOST_PY (scripts/build-gpu.sh makes it)"
    else
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$W/py" "$W"/early/wheels/*.whl >&2 || die "cannot install the gguf wheel"
    fi
    local gguf shape=llama3-8b
    gguf=$(gguf_path)
    [ "$mode" = dry ] && shape=tiny
    rm -f "$W/gguf.ok" "$W/gguf.failed"
    step "starting the random $shape GGUF ($gguf) in the background"
    # shellcheck disable=SC2016 # expanded by the inner bash
    setsid nohup bash -c 'echo $$ >"$6/gguf.pid"; PYTHONPATH="$1" python3 "$2" --tokenizer-from "$3" --out "$4" --shape "$5" && touch "$6/gguf.ok" || touch "$6/gguf.failed"' _ \
        "$W/py" "$ROOT/scripts/gpu/make_random_gguf.py" "$W/early/tokenizer.gguf" "$gguf" "$shape" "$W" \
        >"$W/gguf.log" 2>&1 </dev/null &
    echo "$gguf" >"$W/gguf.path"
    if [ "$mode" = dry ]; then
        step "dry run: the CUDA build would run now: scripts/gpu/build-llama-cuda.sh $W/early/llama.cpp $W/build"
        [ -f "$W/early/llama.cpp/CMakeLists.txt" ] && [ -d "$W/early/llama.cpp/ggml/src/ggml-cuda" ] \
            && [ -f "$W/early/llama.cpp/tools/llama-bench/llama-bench.cpp" ] \
            || die "the carried llama.cpp source is incomplete"
    else
        command -v nvcc >/dev/null || [ -x /usr/local/cuda/bin/nvcc ] || die "no nvcc on this machine"
        step "starting the CUDA build in the background ($(nproc) cores)"
        # shellcheck disable=SC2016 # expanded by the inner bash
        setsid nohup bash -c 'echo $$ >"$1"; exec bash "$2" "$3" "$4"' _ "$W/build.pid" \
            "$ROOT/scripts/gpu/build-llama-cuda.sh" "$W/early/llama.cpp" "$W/build" \
            >"$W/build.log" 2>&1 </dev/null &
    fi
}

# ---------------------------------------------------------------------------------------
# The last stage.
# ---------------------------------------------------------------------------------------
join_bulk() {
    [ -f "$W/bulk.ok" ] && return 0
    step "joining the bulk carries and unpacking (Lectern's bundle, ONNX Runtime, MiniLM, SmolLM2)"
    rm -rf "$W/bundle" "$W/cache"
    # shellcheck disable=SC2046
    cat $(ls "$W"/pieces/bulk.part-* | sort) | unxz_stream | tar -x -C "$W" || die "cannot unpack the bulk carries"
    local smol="$W/cache/assets/llm/SmolLM2-135M-Instruct.Q4_1.gguf"
    [ "$(sha_of "$smol")" = b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53 ] \
        || die "SmolLM2 joined from its parts has the wrong sha256"
    [ -x "$W/bundle/lectern" ] || die "no lectern in the bundle"
    touch "$W/bulk.ok"
}

# LD_LIBRARY_PATH for a bundle folder: its libraries, the machine's own (the driver's
# libcuda may be found only through it), and the fallback ones (libgomp) only where the
# machine lacks them.
libpath() {
    local p=$1
    [ -n "${CUDA_LIBDIRS:-}" ] && p="$p:$CUDA_LIBDIRS"
    [ -n "${LD_LIBRARY_PATH:-}" ] && p="$p:$LD_LIBRARY_PATH"
    ldconfig -p 2>/dev/null | grep -q 'libgomp.so.1 ' || p="$p:$W/bundle/fallback"
    echo "$p"
}

# The CUDA toolkit's library folders (libcudart, libcublas, libcublasLt) where the CUDA
# build found them: libggml-cuda.so needs them at run time, and the machine may have them
# on no default search path (ldconfig) nor in libggml-cuda.so's RUNPATH. Not the driver
# stub (CUDA_cuda_driver_LIBRARY): libcuda.so.1 must be the machine's own.
CUDA_LIBDIRS=""
cuda_libdirs() {
    local c="$W/build/CMakeCache.txt" f d out=""
    [ -f "$c" ] || return 0
    for f in $(sed -n -E 's/^(CUDA_CUDART|CUDA_cudart_LIBRARY|CUDA_cublas_LIBRARY|CUDA_cublasLt_LIBRARY):FILEPATH=(.+)$/\2/p' "$c"); do
        [ -e "$f" ] || continue
        d=$(dirname "$f")
        case ":$out:" in *":$d:"*) ;; *) out="${out:+$out:}$d" ;; esac
    done
    echo "$out"
}

# Two bundles of the one binary: CPU (as built here, no GPU module) and GPU (the same files
# plus libggml-cuda.so built on the machine). llama.cpp loads its backend modules from the
# executable's folder.
make_gpu_bundle() {
    rm -rf "$W/bundle-gpu" && mkdir -p "$W/bundle-gpu"
    cp -al "$W/bundle/." "$W/bundle-gpu/" 2>/dev/null || cp -a "$W/bundle/." "$W/bundle-gpu/"
    cp -f "$W/build/bin/libggml-cuda.so" "$W/bundle-gpu/" || die "no libggml-cuda.so in $W/build/bin"
    CUDA_LIBDIRS=$(cuda_libdirs)
    log "CUDA libraries from: ${CUDA_LIBDIRS:-(the default search path)}"
    LD_LIBRARY_PATH=$(libpath "$W/bundle-gpu") ldd "$W/bundle-gpu/libggml-cuda.so" >"$RES/ldd-ggml-cuda.txt" 2>&1
    grep 'not found' "$RES/ldd-ggml-cuda.txt" >&2 && die "libggml-cuda.so misses libraries (ldd-ggml-cuda.txt)"
    return 0
}

lectern_in() { # DIR ARGS...: lectern of that bundle, on the check's data dir and assets
    local dir=$1; shift
    LD_LIBRARY_PATH=$(libpath "$dir") LECTERN_CACHE_DIR="$W/cache" LECTERN_DATA_DIR="$W/data" \
        "$dir/lectern" "$@"
}

# Seconds for one step of the last device call: at most MAX, less as its budget runs out
# (the call is killed at its timeout_s, and then no summary comes back at all).
capped() { # MAX [RESERVE]
    local t=$1
    if [ "$mode" = device ] && [ "$IN_LAST" = 1 ]; then
        t=$(($(left) - ${2:-90}))
        [ "$t" -gt "$1" ] && t=$1
    fi
    echo "$t"
}

ask_all() { # NAME DIR [env...]: every question, one JSON file each, stderr kept
    local name=$1 dir=$2 i=0 q t; shift 2
    mkdir -p "$W/answers/$name" "$W/logs"
    while IFS= read -r q; do
        case "$q" in '' | '#'*) continue ;; esac
        i=$((i + 1))
        t=$(capped 180)
        [ "$t" -lt 20 ] && t=20
        timeout "$t" env LECTERN_LLM__TEMPERATURE=0 "$@" RUST_LOG="info,llama-cpp-2=info" LD_LIBRARY_PATH="$(libpath "$dir")" \
            LECTERN_CACHE_DIR="$W/cache" LECTERN_DATA_DIR="$W/data" \
            "$dir/lectern" --llm-model "$W/cache/assets/llm/SmolLM2-135M-Instruct.Q4_1.gguf" \
            ask --workspace gpu-check --json "$q" \
            >"$W/answers/$name/$(printf %02d $i).json" 2>"$W/logs/ask-$name-$(printf %02d $i).log" \
            || log "ask $name $i failed (logs/ask-$name-$(printf %02d $i).log)"
    done <"$ROOT/scripts/gpu/questions.txt"
}

offload_lines() { # LOG: what the start-up log says about devices, offload and buffers
    grep -E -i 'GPUs available|offload|CUDA0|ggml_cuda_init|Device 0|model buffer|KV buffer|compute buffer|language model loaded|load_backend|no usable GPU' "$1" \
        | sed -E 's/\x1b\[[0-9;]*m//g' | cut -c1-300 | head -n 40
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# `lectern serve` on the data dir with the given environment; sets SERVE_PID, SERVE_PORT.
start_serve() { # DIR LOG [env...]
    local dir=$1 logf=$2; shift 2
    SERVE_PORT=$(free_port)
    env "$@" RUST_LOG="info,llama-cpp-2=info" LD_LIBRARY_PATH="$(libpath "$dir")" \
        LECTERN_CACHE_DIR="$W/cache" LECTERN_DATA_DIR="$W/data" \
        "$dir/lectern" serve --bind "127.0.0.1:$SERVE_PORT" >"$logf" 2>&1 &
    SERVE_PID=$!
    local i
    for i in $(seq 1 240); do
        python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
            "http://127.0.0.1:$SERVE_PORT/ready" >/dev/null 2>&1 && return 0
        kill -0 "$SERVE_PID" 2>/dev/null || { log "serve stopped while starting (see $logf)"; return 1; }
        sleep 0.5
    done
    log "serve was not ready after 120 s (see $logf)"
    return 1
}
stop_serve() { [ -n "${SERVE_PID:-}" ] && kill "$SERVE_PID" 2>/dev/null && wait "$SERVE_PID" 2>/dev/null; SERVE_PID=""; }

wait_for() { # FILE-OK FILE-FAILED SECONDS WHAT
    local ok=$1 failed=$2 secs=$3 what=$4 t=0
    while [ ! -f "$ok" ] && [ ! -f "$failed" ] && [ "$t" -lt "$secs" ]; do sleep 2; t=$((t + 2)); done
    [ -f "$ok" ] && return 0
    [ -f "$failed" ] && { log "$what failed: $(cat "$failed" 2>/dev/null)"; return 2; }
    log "$what is not done after waiting $secs s"
    return 1
}

last_stage() {
    IN_LAST=1
    mkdir -p "$RES"
    local k
    for k in $(seq 1 "$of"); do
        [ -f "$W/stage-$k.ok" ] || die "call $k's carry is not on this machine (it went back between calls): start again from call 1" 3
    done
    join_bulk
    local here_ref="$CARRY/ref/answers-here"
    info_json() {
        python3 - "$RES/info.json" "$@" <<'PY'
import json, sys
path, kv = sys.argv[1], sys.argv[2:]
try:
    d = json.load(open(path))
except Exception:
    d = {}
for a in kv:
    k, _, v = a.partition("=")
    d[k] = v
json.dump(d, open(path, "w"), indent=1)
PY
    }
    info_json mode="$mode" bundle="$(cat "$W/bundle/BUILD-INFO" 2>/dev/null | head -n 2 | tr '\n' ' ')" \
        llama_cpp_source="$(head -n 2 "$W/early/llama.cpp/LECTERN-SOURCE.txt" 2>/dev/null | tr '\n' ' ')" \
        cpu="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
    if [ "$mode" = dry ]; then
        info_json note="Dry run on the development machine: no GPU; the CUDA build, the GPU answers and llama.cpp's CUDA tools are skipped; the speed harness ran on a tiny random model on the CPU."
    else
        info_json gpu="$(nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null)" \
            driver="$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null)" \
            nvcc="$( (nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>/dev/null | tail -n1)" \
            cmake="$(cmake --version 2>/dev/null | head -n1)"
    fi

    step "the bundle's libraries resolve"
    if LD_LIBRARY_PATH=$(libpath "$W/bundle") ldd "$W/bundle/lectern" | grep 'not found' >&2; then
        die "the lectern binary misses libraries on this machine"
    fi
    lectern_in "$W/bundle" --version >&2 || die "the lectern binary does not run here"
    # llama.cpp picks its CPU module by what CPUID reports. Under gVisor (these machines'
    # runtime) CPUID reports AMX but the tile state is not enabled, and the Sapphire Rapids
    # module dies of SIGILL at the first matrix product (seen on the H200 machine): the
    # AVX-512 module (zen4) is taken instead.
    if [ "$mode" = device ] && grep -q -w amx_tile /proc/cpuinfo && [ -f "$W/bundle/libggml-cpu-sapphirerapids.so" ]; then
        step "AMX reported: the sapphirerapids CPU module is left out (gVisor does not enable AMX state)"
        rm -f "$W/bundle/libggml-cpu-sapphirerapids.so"
    fi
    local correctness=1
    [ "${GPU_CHECK_SKIP_CORRECTNESS:-0}" = 1 ] && correctness=0 && step "GPU_CHECK_SKIP_CORRECTNESS=1: no answers compared, speed only"

    # -- Correctness, CPU side (while the CUDA build runs) ---------------------------------
    if [ ! -f "$W/ingested.ok" ]; then
        step "ingesting the corpus ($(ls "$W/early/corpus" | tr '\n' ' '))"
        lectern_in "$W/bundle" ingest --workspace gpu-check --json "$W/early/corpus" \
            >"$RES/ingest.json" 2>"$W/logs-ingest.log" || die "ingest failed (logs-ingest.log)"
        touch "$W/ingested.ok"
    fi
    if [ "$correctness" = 1 ] && [ ! -f "$W/answers-cpu.ok" ]; then
        step "CPU answers (SmolLM2, llm.gpu_layers = 0, no GPU module)"
        # Four threads: the CUDA build in the background needs the machine's cores more.
        ask_all cpu "$W/bundle" LECTERN_LLM__GPU_LAYERS=0 LECTERN_LLM__THREADS=4
        if [ ! -s "$W/answers/cpu/01.json" ]; then
            grep -q -i 'no backends' "$W/logs/ask-cpu-01.log" && die "llama.cpp loaded no backend: this \
lectern build does not load llama.cpp's backend modules (under the dynamic-backends feature, crates/llm \
must call llama_cpp_2::llama_backend::load_backends_from_path with the executable's folder before \
loading a model)"
            die "the first CPU answer failed: $(tail -n 3 "$W/logs/ask-cpu-01.log")"
        fi
        touch "$W/answers-cpu.ok"
    fi
    if [ "$mode" = dry ]; then
        rm -rf "$CARRY/ref" && mkdir -p "$here_ref"
        cp "$W"/answers/cpu/*.json "$here_ref/"
        step "kept the CPU answers as .gpu/ref/answers-here (the last call carries them)"
    elif [ "$correctness" = 1 ] && [ -d "$here_ref" ]; then
        python3 "$ROOT/scripts/gpu/compare_answers.py" --questions "$ROOT/scripts/gpu/questions.txt" \
            --a "$here_ref" --b "$W/answers/cpu" --a-name cpu-here --b-name cpu-there \
            --out "$RES/correctness-here.json" >&2 || true
    fi

    # -- Prompt calibration: sources for a ~2,000-token RAG prompt --------------------------
    local sources=${GPU_CHECK_SOURCES:-} tokens=""
    if [ -z "$sources" ]; then
        sources=14
        for _ in 1 2 3; do
            tokens=$(env LECTERN_QUERY__SOURCES="$sources" LECTERN_QUERY__PER_PAGE="$sources" \
                LECTERN_QUERY__CANDIDATES=$((sources * 3)) LECTERN_QUERY__EVIDENCE_SENTENCES=0 \
                LECTERN_QUERY__ABSTAIN_BELOW=0 LECTERN_LLM__MAX_TOKENS=1 \
                LD_LIBRARY_PATH="$(libpath "$W/bundle")" LECTERN_CACHE_DIR="$W/cache" LECTERN_DATA_DIR="$W/data" \
                "$W/bundle/lectern" --llm-model "$W/cache/assets/llm/SmolLM2-135M-Instruct.Q4_1.gguf" \
                ask --workspace gpu-check --json "$(grep -v '^#' scripts/gpu/questions.txt | head -n1)" 2>>"$W/logs-calibration.log" \
                | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["timings"]["prompt_tokens"])' 2>/dev/null)
            [ -n "$tokens" ] && [ "$tokens" -ge 100 ] || { tokens=""; break; }
            if [ "$tokens" -ge 1900 ] && [ "$tokens" -le 2300 ]; then break; fi
            sources=$(python3 -c "import math; print(max(4, min(40, math.ceil($sources * 2100 / $tokens))))")
        done
    fi
    step "RAG prompt: query.sources = $sources (${tokens:-?} prompt tokens)"
    printf '{"sources": %s, "prompt_tokens": %s}\n' "$sources" "${tokens:-null}" >"$RES/calibration.json"
    local speed_env=("LECTERN_QUERY__SOURCES=$sources" "LECTERN_QUERY__PER_PAGE=$sources"
        LECTERN_QUERY__CANDIDATES=$((sources * 3)) LECTERN_QUERY__EVIDENCE_SENTENCES=0
        LECTERN_QUERY__ABSTAIN_BELOW=0 LECTERN_LLM__MAX_TOKENS=128 LECTERN_LLM__TEMPERATURE=0
        LECTERN_LLM__CONTEXT_LENGTH=4096 LECTERN_LLM__BATCH_SIZE=512)

    local key
    if [ ! -f "$W/api-key" ]; then
        lectern_in "$W/bundle" user create --email gpu-check@localhost.localdomain --admin >&2 2>>"$W/logs-accounts.log"
        lectern_in "$W/bundle" api-key create --user gpu-check@localhost.localdomain 2>>"$W/logs-accounts.log" | tail -n1 >"$W/api-key"
    fi
    key=$(cat "$W/api-key")
    [ -n "$key" ] || { rm -f "$W/api-key"; die "no API key (logs-accounts.log)"; }

    # -- The 8B file ---------------------------------------------------------------------
    local gguf
    gguf=$(cat "$W/gguf.path")
    wait_for "$W/gguf.ok" "$W/gguf.failed" 120 "the random GGUF" || die "no random GGUF (gguf.log: $(tail -n 3 "$W/gguf.log"))"
    info_json gguf_8b="$gguf ($(du -h "$gguf" | cut -f1)): $(tail -n1 "$W/gguf.log")"

    if [ "$mode" = dry ]; then
        step "dry run: the speed harness on the tiny random model, CPU, 2 sequences"
        if start_serve "$W/bundle" "$W/logs-serve.log" LECTERN_LLM__MODEL_PATH="$gguf" \
            LECTERN_LLM__GPU_LAYERS=0 LECTERN_LLM__PARALLEL=2 "${speed_env[@]}" LECTERN_LLM__MAX_TOKENS=16; then
            python3 "$ROOT/scripts/gpu/answer_load.py" --url "http://127.0.0.1:$SERVE_PORT" --key "$key" \
                --questions scripts/gpu/questions.txt --single 1 --concurrency 2 --rounds 1 --timeout 300 \
                --out "$RES/lectern-speed.json" >&2 || log "the speed harness reported failures"
        fi
        stop_serve
        offload_lines "$W/logs-serve.log" >"$RES/offload-8b.txt"
        local lb=${LECTERN_LLAMA_BENCH:-}
        [ -x "$lb" ] || lb=$(ls "$LECTERN_CACHE_DIR"/llama-cpp/*/bin/llama-bench 2>/dev/null | head -n1)
        if [ -x "$lb" ]; then
            step "dry run: llama-bench (CPU build of scripts/build-llama-server.sh) on the tiny model"
            timeout 120 "$lb" -m "$gguf" -p 64 -n 16 -r 1 -o json >"$RES/llama-bench.json" 2>>"$W/logs-bench.log" \
                || log "llama-bench failed"
        fi
        return 0
    fi

    # -- GPU: wait for the build --------------------------------------------------------
    local wait_s=$(($(left) - 150))
    [ "$wait_s" -lt 10 ] && wait_s=10
    wait_for "$W/build/cuda.ok" "$W/build/build.failed" "$wait_s" "the CUDA build"
    case $? in
    0) ;;
    2) die "the CUDA build failed: $(tail -n 5 "$W/build.log")" ;;
    *)
        if ! kill -0 "$(cat "$W/build.pid" 2>/dev/null)" 2>/dev/null && [ ! -f "$W/build/cuda.ok" ]; then
            die "the CUDA build stopped without a result (killed? build.log: $(tail -n 3 "$W/build.log"))"
        fi
        report; log "the CUDA build is still running: make the same call again now"; exit 75 ;;
    esac
    info_json cuda_build_seconds="$(grep -o 'ggml-cuda built in [0-9]* s' "$W/build.log" | head -n1)"
    make_gpu_bundle

    if [ "$correctness" = 1 ]; then
        step "GPU answers (SmolLM2, llm.gpu_layers = 99)"
        ask_all gpu "$W/bundle-gpu" LECTERN_LLM__GPU_LAYERS=99
        [ -s "$W/answers/gpu/01.json" ] || die "the first GPU answer failed: $(grep -i -E 'error|gpu' "$W/logs/ask-gpu-01.log" | tail -n 4)"
        offload_lines "$W/logs/ask-gpu-01.log" >"$RES/offload-smollm2.txt"
        python3 "$ROOT/scripts/gpu/compare_answers.py" --questions "$ROOT/scripts/gpu/questions.txt" \
            --a "$W/answers/cpu" --b "$W/answers/gpu" --out "$RES/correctness.json" >&2 || true
    fi

    step "Lectern's speed on the 8B file: lectern serve, llm.parallel = 8, all layers on the GPU"
    if start_serve "$W/bundle-gpu" "$W/logs-serve-8b.log" LECTERN_LLM__MODEL_PATH="$gguf" \
        LECTERN_LLM__GPU_LAYERS=99 LECTERN_LLM__PARALLEL=8 "${speed_env[@]}"; then
        nvidia-smi --query-gpu=memory.used,memory.total --format=csv >"$RES/gpu-memory.txt" 2>&1
        python3 "$ROOT/scripts/gpu/answer_load.py" --url "http://127.0.0.1:$SERVE_PORT" --key "$key" \
            --questions scripts/gpu/questions.txt --single 3 --concurrency 8 --rounds 2 --timeout 60 \
            --deadline "$(d=$(capped 400 60); [ "$d" -lt 30 ] && d=30; echo "$d")" --out "$RES/lectern-speed.json" >&2 \
            || log "the speed harness reported failures"
        nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv >>"$RES/gpu-memory.txt" 2>&1
    fi
    stop_serve
    offload_lines "$W/logs-serve-8b.log" >"$RES/offload-8b.txt"

    # Whether llama.cpp's CPU threads, idle but spinning when every layer is on the GPU,
    # slow the process down: a few instead of one per core.
    if [ "$(left)" -gt 200 ]; then
        step "the same with llm.threads = 4 (the default is one per core), for comparison"
        if start_serve "$W/bundle-gpu" "$W/logs-serve-8b-t4.log" LECTERN_LLM__MODEL_PATH="$gguf" \
            LECTERN_LLM__GPU_LAYERS=99 LECTERN_LLM__PARALLEL=8 LECTERN_LLM__THREADS=4 "${speed_env[@]}"; then
            python3 "$ROOT/scripts/gpu/answer_load.py" --url "http://127.0.0.1:$SERVE_PORT" --key "$key" \
                --questions scripts/gpu/questions.txt --single 3 --concurrency 8 --rounds 1 --timeout 60 \
                --deadline "$(d=$(capped 120 60); [ "$d" -lt 30 ] && d=30; echo "$d")" --out "$RES/lectern-speed-t4.json" >&2 \
                || log "the speed harness reported failures"
        fi
        stop_serve
    fi

    if wait_for "$W/build/build.ok" "$W/build/build.failed" $(($(left) - 60)) "llama.cpp's tools"; then
        step "llama-bench on the same file (pp $( [ -n "$tokens" ] && echo "$tokens" || echo 2000), tg 128, flash attention off and on)"
        local tl
        tl=$(capped 150 20)
        [ "$tl" -ge 30 ] && { LD_LIBRARY_PATH=$(libpath "$W/build/bin") timeout "$tl" "$W/build/bin/llama-bench" -m "$gguf" -ngl 99 -p "${tokens:-2000}" -n 128 -b 512 -ub 512 -fa "$([ "${GPU_CUDA_FA:-ON}" = OFF ] && echo 0 || echo 0,1)" -r 3 \
            -o json >"$RES/llama-bench.json" 2>"$W/logs-llama-bench.log" || log "llama-bench failed"; }
        tl=$(capped 120 15)
        if [ "$tl" -ge 30 ]; then
            step "llama-batched-bench: ${tokens:-2000}-token prompts, 128 tokens, 1 and 8 sequences"
            LD_LIBRARY_PATH=$(libpath "$W/build/bin") timeout "$tl" "$W/build/bin/llama-batched-bench" -m "$gguf" -ngl 99 -c 32768 -b 512 -ub 512 \
                -npp "${tokens:-2000}" -ntg 128 -npl 1,8 --output-format jsonl \
                >"$RES/batched-bench.jsonl" 2>"$W/logs-batched-bench.log" || log "llama-batched-bench failed"
        fi
    fi
}

report() {
    step "writing the summary"
    python3 "$ROOT/scripts/gpu/report.py" "$RES" "$OUT" >/dev/null || log "report.py failed"
    (cd "$W" && tar -czf "$OUT/logs.tar.gz" --ignore-failed-read \
        preflight.txt build.log gguf.log build/configure.log build/compile.log logs logs-*.log answers results 2>/dev/null) || true
    log "wrote $OUT/summary.md, results.json, logs.tar.gz"
}

# ---------------------------------------------------------------------------------------
if [ "$mode" = dry ]; then
    n=$(check_carries) || exit 1
    log "dry run in $W (results in $OUT)"
    rm -rf "$W" && mkdir -p "$W" "$OUT" "$RES"
    mv "$W.carries.txt" "$RES/carries.txt"
    for k in $(seq 1 "$n"); do
        take_carry "$k"
        [ "$k" = 1 ] && stage_one
    done
    of=$n
    last_stage
    report
    cat "$OUT/summary.md" >&2
    exit 0
fi

[ "$stage" = 1 ] && stop_background && rm -rf "$W" && mkdir -p "$W" "$OUT"
if [ "$stage" = "$of" ] && [ "$stage" -gt 1 ] && [ -f "$W/stage-$stage.ok" ] && [ ! -f "$CARRY/carry-$stage/MANIFEST" ]; then
    # The same last call made again after exit 75, without its carry: taken the first time.
    log "call $stage of $of again: carry $stage was taken by the earlier try"
else
    take_carry "$stage"
    log "call $stage of $of: carry $stage taken"
fi
[ "$stage" = 1 ] && stage_one
if [ "$stage" -lt "$of" ]; then
    log "done; make call $((stage + 1)) now (the machine goes back 30 s after this call)"
    exit 0
fi
last_stage
report
exit 0
