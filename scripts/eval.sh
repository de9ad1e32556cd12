#!/usr/bin/env bash
# Reproduces docs/EVALUATION.md: the development set's PDFs ingested with the embedded
# defaults, `lectern eval retrieval` on its BEIR form (pages as documents), and
# `lectern eval qa` with each model given (default: SmolLM2 and Qwen2.5-Coder-1.5B).
# Results (JSON) go to $LECTERN_CACHE_DIR/eval-results/. Extra settings come from the
# environment, e.g. LECTERN_INGEST__CHUNK_TOKENS=300 scripts/eval.sh smollm2.
#
# Speculative decoding: LECTERN_LLM__SPECULATIVE=lookup, or =model (the draft model is
# Qwen2.5-Coder-0.5B, fetched, unless LECTERN_LLM__DRAFT_MODEL_PATH names another); the
# results' file names then end in -spec-<kind>.
#
# The embedding engine is the settings' (LECTERN_EMBEDDING__ENGINE): `onnx` (MiniLM, the
# default), `e5` (multilingual-e5-small, scripts/fetch-assets.sh e5) or `gguf`
# (EmbeddingGemma-300M, scripts/fetch-assets.sh gemma); each has its own index and result
# files.
#
# Usage: scripts/eval.sh [retrieval-only|smollm2|qwen]...
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
spec="${LECTERN_LLM__SPECULATIVE:-off}"
if [ "$spec" = model ] && [ -z "${LECTERN_LLM__DRAFT_MODEL_PATH:-}" ]; then
    lectern_prepare core pdfium llm qwen qwen-draft
    export LECTERN_LLM__DRAFT_MODEL_PATH="$LECTERN_QWEN_DRAFT_MODEL"
else
    lectern_prepare core pdfium llm qwen
fi
lectern_embedding_engine
set -a; eval "$(scripts/fetch-dev-qa.sh)"; set +a
python3 -c "import pypdfium2" 2>/dev/null || python3 -m pip install -q pypdfium2==5.15.2 >&2
# LECTERN_EVAL_PROFILE=debug: the test build (scripts/env.sh, lectern_eval_bin).
lectern_eval_bin
qa=tests/data/dev-qa/qa.jsonl
out="$LECTERN_CACHE_DIR/eval-results"
mkdir -p "$out"
# The index depends on the ingest settings only; fusion settings reuse it.
IFS=- read -r chunk overlap prefix rrf_k \
    <<<"$(lectern_setting ingest.chunk_tokens ingest.chunk_overlap_tokens ingest.context_prefix index.rrf_k)"
data_tag="$engine-c$chunk-o$overlap-p$prefix"
tag="$data_tag-k$rrf_k"
data="$LECTERN_CACHE_DIR/eval-data/$data_tag"
if [ ! -f "$data/.ingested" ]; then
    rm -rf "$data"
    "$bin" --data-dir "$data" ingest --workspace dev-qa "$LECTERN_DEV_QA_DIR" >&2
    touch "$data/.ingested"
fi
beir="$LECTERN_CACHE_DIR/beir-dev-qa"
[ -f "$beir/corpus.jsonl" ] || python3 scripts/make-beir-dev-qa.py "$qa" "$LECTERN_DEV_QA_DIR" "$beir" >&2

runs=("$@")
[ ${#runs[@]} -gt 0 ] || runs=(retrieval-only smollm2 qwen)
for run in "${runs[@]}"; do
    case "$run" in
    retrieval-only)
        "$bin" --data-dir "$data" eval retrieval --dataset "$beir" --json >"$out/beir-$tag.json"
        "$bin" --data-dir "$data" eval retrieval --dataset "$beir"
        "$bin" --data-dir "$data" eval qa --workspace dev-qa --retrieval-only --json "$qa" >"$out/qa-retrieval-$tag.json"
        "$bin" --data-dir "$data" eval qa --workspace dev-qa --retrieval-only "$qa" ;;
    smollm2 | qwen)
        model=$LECTERN_SMOLLM2_MODEL
        [ "$run" = qwen ] && model=$LECTERN_QWEN_MODEL
        result="$out/qa-$run-$tag.json"
        [ "$spec" = off ] || result="$out/qa-$run-$tag-spec-$spec.json"
        "$bin" --data-dir "$data" --llm-model "$model" eval qa --workspace dev-qa --json "$qa" >"$result"
        python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(sys.argv[2], json.dumps(d['summary'], indent=1))" "$result" "$run" ;;
    *) echo "eval: unknown run $run" >&2; exit 2 ;;
    esac
done
