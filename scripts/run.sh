#!/usr/bin/env bash
# Fetches what Lectern needs (ONNX Runtime, the default embedding model, PDFium and the
# chat models: SmolLM2 and Qwen2.5-Coder-1.5B, which answers by default; all checked by
# sha256, into a cache outside the checkout), builds the release binary and runs
# `lectern serve` on the embedded defaults: SQLite, the embedded Qdrant engine and the
# data in ./lectern-data. Arguments go to `lectern serve` (e.g. --bind 0.0.0.0:8080).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

lectern_prepare core pdfium llm qwen
cargo build --release --locked -p lectern
exec "$CARGO_TARGET_DIR/release/lectern" serve "$@"
