#!/usr/bin/env bash
# On the GPU machine: builds llama.cpp's CUDA backend as a run-time module
# (libggml-cuda.so, GGML_BACKEND_DL) from the very llama.cpp source that llama-cpp-sys-2
# vendors (carried by scripts/build-gpu.sh), for compute capability 9.0 only, and
# llama.cpp's own llama-bench and llama-batched-bench against the same libraries, for the
# side-by-side speed figures.
#
# The module is loaded by Lectern's CPU-built binary (built here with the
# `dynamic-backends` feature, from the same source): both sides are configured alike
# where it matters to the module's ABI (GGML_BACKEND_DL, BUILD_SHARED_LIBS, the ggml
# version); only the CPU backend's options differ, and that backend is a module of its own.
#
# Usage: build-llama-cuda.sh SRC BUILD    (writes BUILD/build.ok or BUILD/build.failed)
# Environment: GPU_CUDA_ARCH (default 90-real), GPU_BUILD_JOBS (default nproc), GPU_CUDA_FA
# (default ON: FlashAttention kernels; OFF builds faster and measures without them).
set -uo pipefail
src=$1 build=$2
mkdir -p "$build"
rm -f "$build/build.ok" "$build/build.failed"
started=$(date +%s)
fail() { echo "build-llama-cuda: $*" >&2; echo "$*" >"$build/build.failed"; exit 1; }

nvcc=$(command -v nvcc || true)
[ -z "$nvcc" ] && [ -x /usr/local/cuda/bin/nvcc ] && nvcc=/usr/local/cuda/bin/nvcc
[ -n "$nvcc" ] || fail "no nvcc on PATH or in /usr/local/cuda/bin"
command -v cmake >/dev/null || fail "no cmake"
generator="Unix Makefiles"
command -v ninja >/dev/null && generator=Ninja
echo "build-llama-cuda: $("$nvcc" --version | tail -n 2 | tr '\n' ' ')" >&2
echo "build-llama-cuda: cmake $(cmake --version | head -n1 | awk '{print $3}'), $generator, $(nproc) cores" >&2

export CUDACXX="$nvcc"
# GGML_NATIVE must be OFF: with GGML_BACKEND_DL on x86, ggml-cpu's CMakeLists stops the
# configure ("GGML_NATIVE is not compatible with GGML_BACKEND_DL"). OFF builds one CPU
# module (bin/libggml-cpu.so, AVX2/FMA/F16C level), which llama-bench and
# llama-batched-bench need at run time (llama-bench exits "CPU backend is not loaded"
# without one); Lectern uses its own CPU modules from the bundle.
cmake -S "$src" -B "$build" -G "$generator" \
    -DCMAKE_BUILD_TYPE=Release \
    -DBUILD_SHARED_LIBS=ON -DGGML_BACKEND_DL=ON \
    -DGGML_CPU_ALL_VARIANTS=OFF -DGGML_NATIVE=OFF -DGGML_OPENMP=ON -DGGML_CCACHE=OFF \
    -DGGML_CUDA=ON -DGGML_CUDA_NCCL=OFF -DGGML_CUDA_FA="${GPU_CUDA_FA:-ON}" \
    -DCMAKE_CUDA_ARCHITECTURES="${GPU_CUDA_ARCH:-90-real}" \
    -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF -DLLAMA_BUILD_COMMON=ON \
    -DLLAMA_BUILD_TOOLS=ON >"$build/configure.log" 2>&1 \
    || { tail -n 30 "$build/configure.log" >&2; fail "cmake configure failed (configure.log)"; }
# ggml-cuda first: it is what Lectern needs; the two tools are the reference.
cmake --build "$build" --target ggml-cuda -j "${GPU_BUILD_JOBS:-$(nproc)}" >"$build/compile.log" 2>&1 \
    || { tail -n 40 "$build/compile.log" >&2; fail "ggml-cuda did not compile (compile.log)"; }
touch "$build/cuda.ok"
echo "build-llama-cuda: ggml-cuda built in $(($(date +%s) - started)) s" >&2
cmake --build "$build" --target llama-bench llama-batched-bench -j "${GPU_BUILD_JOBS:-$(nproc)}" \
    >>"$build/compile.log" 2>&1 \
    || { tail -n 40 "$build/compile.log" >&2; fail "llama-bench / llama-batched-bench did not compile (compile.log); libggml-cuda.so is built"; }
echo "build-llama-cuda: done in $(($(date +%s) - started)) s" >&2
ls -la "$build/bin" >&2
touch "$build/build.ok"
