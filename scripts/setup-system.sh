#!/usr/bin/env bash
# Installs the system packages the build and the tests need, when they are missing
# (Debian or Ubuntu, as root). Safe to run again: it installs nothing that is present.
set -euo pipefail
need=()
command -v cc >/dev/null || need+=(build-essential)
command -v pkg-config >/dev/null || need+=(pkg-config)
command -v unzip >/dev/null || need+=(unzip)
command -v python3 >/dev/null || need+=(python3 python3-pip)
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
command -v pg_isready >/dev/null || need+=(postgresql-client)
# llama.cpp (llama-cpp-sys-2) builds with CMake and generates its bindings with libclang.
command -v cmake >/dev/null || need+=(cmake)
command -v clang >/dev/null || need+=(clang)
ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || need+=(libclang-dev)
# The dev set's checker reads the PDFs' pages with pdftotext and pdfinfo.
command -v pdftotext >/dev/null || need+=(poppler-utils)
# The web app's browser tests drive Debian's headless Chromium through chromedriver.
[ -x /usr/bin/chromium ] || need+=(chromium)
[ -x /usr/bin/chromedriver ] || need+=(chromium-driver)
# Scanned pages are read by Tesseract's command-line program; the OCR tests read English
# and German scans.
command -v tesseract >/dev/null || need+=(tesseract-ocr)
for lang in eng deu; do
    [ -f "/usr/share/tesseract-ocr/5/tessdata/$lang.traineddata" ] || need+=("tesseract-ocr-$lang")
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup-system: please install: ${need[*]}" >&2
        exit 1
    fi
    echo "setup-system: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
