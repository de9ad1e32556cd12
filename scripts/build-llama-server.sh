#!/usr/bin/env bash
# Builds llama.cpp's own server and llama-bench, for side-by-side tests and benchmarks of
# Lectern's engines, from the llama.cpp source inside a pinned PyPI source release
# (llama-cpp-python 0.3.36, sha256-checked), for this machine's CPU. Prebuilt servers
# are compiled for one CPU family (the Vulkan wheel of `fetch-assets.sh llama-server`
# stops with an illegal instruction on CPUs without AVX-512), so a build is the portable
# way.
#
# Output: ${LECTERN_CACHE_DIR}/llama-cpp/<release>-<cpu>/bin/{llama-server,llama-bench};
# prints LECTERN_LLAMA_SERVER=... and LECTERN_LLAMA_BENCH=... on stdout. A finished build
# is reused. Needs cmake and a C++ compiler (scripts/setup-system.sh installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
readonly RELEASE=llama_cpp_python-0.3.36
readonly SHA=832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e
# The CPU features the build targets (GGML_NATIVE), so another machine rebuilds.
cpu=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx|avx2|avx512[a-z_]*|amx[a-z_]*|fma|f16c|bmi2|sse4_2)$' | sort | tr -d '\n' | sha256sum | cut -c1-12)
# AMX is left out: on a virtual machine that reports AMX, this llama.cpp's AMX matrix
# multiply dies with SIGSEGV on the first batch (seen on a Xeon with amx_int8), and the
# comparisons need a reference server that runs.
dest="$LECTERN_CACHE_DIR/llama-cpp/$RELEASE-$cpu-noamx"
if [ ! -x "$dest/bin/llama-server" ] || [ ! -x "$dest/bin/llama-bench" ]; then
    work="$LECTERN_CACHE_DIR/llama-cpp/.build-$RELEASE"
    mkdir -p "$work"
    archive="$work/$RELEASE.tar.gz"
    if [ ! -f "$archive" ] || [ "$(sha256sum "$archive" | cut -d' ' -f1)" != "$SHA" ]; then
        echo "build-llama-server: downloading the $RELEASE source release" >&2
        rm -f "$work"/*.tar.gz
        python3 -m pip download -q --no-deps --no-binary :all: -d "$work" "${RELEASE/_cpp_python-/-cpp-python==}" >&2
        [ "$(sha256sum "$archive" | cut -d' ' -f1)" = "$SHA" ] || { echo "build-llama-server: $archive has the wrong sha256" >&2; exit 1; }
    fi
    rm -rf "$work/src" && mkdir -p "$work/src"
    tar xzf "$archive" -C "$work/src" "$RELEASE/vendor/llama.cpp"
    src="$work/src/$RELEASE/vendor/llama.cpp"
    echo "build-llama-server: building llama-server and llama-bench (several minutes on two cores)" >&2
    no_amx="-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
    cmake -S "$src" -B "$work/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
        -DCMAKE_C_FLAGS="$no_amx" -DCMAKE_CXX_FLAGS="$no_amx" \
        -DBUILD_SHARED_LIBS=OFF -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_BUILD_TESTS=OFF \
        -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON >&2
    cmake --build "$work/build" --target llama-server llama-bench -j "$(nproc)" >&2
    mkdir -p "$dest/bin"
    cp "$work/build/bin/llama-server" "$work/build/bin/llama-bench" "$dest/bin/"
    cp "$src/LICENSE" "$dest/LICENSE"
    rm -rf "$work/src" "$work/build"
fi
echo "LECTERN_LLAMA_SERVER=$dest/bin/llama-server"
echo "LECTERN_LLAMA_BENCH=$dest/bin/llama-bench"
