#!/usr/bin/env bash
# Runs Lectern's whole test suite on this machine: installs missing system packages,
# fetches the real models and runtimes (checked by sha256) into a cache outside the
# checkout, makes sure PostgreSQL answers, then `cargo test --workspace`.
#
# Environment: LECTERN_TEST_POSTGRES_URL (default postgres://postgres@127.0.0.1:5432/postgres),
# LECTERN_TEST_QDRANT_URL (a Qdrant server's gRPC URL; when unset the server-index
# contract tests are ignored, with the reason; the embedded-index ones always run).
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh

lectern_prepare core pdfium llm e5 gemma
# llama.cpp's own server, built for this CPU, for the side-by-side engine tests.
set -a; eval "$(scripts/build-llama-server.sh)"; set +a
# The OpenAI-compatibility test drives Lectern with the official client.
python3 -c "import openai" 2>/dev/null || python3 -m pip install -q "openai==2.*" >&2
# The MCP tests drive `lectern mcp` and /mcp with the official Python MCP client.
python3 -c "import mcp.client.streamable_http" 2>/dev/null || python3 -m pip install -q "mcp==2.*" >&2
# The web app's mail (verification links, invitations) goes to a local SMTP sink.
python3 -c "import aiosmtpd" 2>/dev/null || python3 -m pip install -q "aiosmtpd==1.4.*" >&2
set -a
eval "$(scripts/fetch-dev-qa.sh)"
eval "$(scripts/fetch-dev-qa.sh multilingual)"
eval "$(scripts/fetch-test-docs.sh)"
set +a

pg_url="${LECTERN_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
if ! pg_isready -q -d "$pg_url" 2>/dev/null; then
    if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
        echo "test: starting the local PostgreSQL cluster" >&2
        pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    fi
    for _ in $(seq 1 30); do pg_isready -q -d "$pg_url" && break; sleep 1; done
    pg_isready -q -d "$pg_url" || { echo "test: PostgreSQL does not answer at $pg_url (set LECTERN_TEST_POSTGRES_URL)" >&2; exit 1; }
fi

# The dev set is what it says: every quote on its page, no unanswerable question answered
# by the documents.
python3 tests/data/dev-qa/verify_qa.py tests/data/dev-qa/qa.jsonl "$LECTERN_DEV_QA_DIR" >&2
python3 tests/data/dev-qa-multilingual/verify_qa.py tests/data/dev-qa-multilingual/qa.jsonl "$LECTERN_DEV_QA_ML_DIR" >&2

exec cargo test --workspace --locked "$@"
