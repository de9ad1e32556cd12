#!/usr/bin/env bash
# Retrieval across languages on the multilingual dev set (tests/data/dev-qa-multilingual):
# each manual is ingested into a workspace of its own, and each question is asked of the
# workspace of the manual that answers it, so a question in one language must find its
# answer in a document of another. Prints page-hit@1 and @5 for questions in the
# document's language and in another, and writes the JSON to
# $LECTERN_CACHE_DIR/eval-results/multilingual-<engine>.json. `other_manuals` scores the
# same questions asked of the other manuals whose pages answer them too (each question's
# `also`): 107 pairs of question and manual that no setting was tuned on.
#
# The embedding engine is the settings' (LECTERN_EMBEDDING__ENGINE): `onnx` (MiniLM,
# the default), `e5` (multilingual-e5-small, fetched by scripts/fetch-assets.sh e5) or
# `gguf` (EmbeddingGemma-300M, fetched and converted by scripts/fetch-assets.sh gemma).
#
# Usage: scripts/eval-multilingual.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
lectern_prepare core pdfium
lectern_embedding_engine
set -a; eval "$(scripts/fetch-dev-qa.sh multilingual)"; set +a
# LECTERN_EVAL_PROFILE=debug: the test build (scripts/env.sh, lectern_eval_bin).
lectern_eval_bin
qa=tests/data/dev-qa-multilingual/qa.jsonl
out="$LECTERN_CACHE_DIR/eval-results"
data="$LECTERN_CACHE_DIR/eval-data/multilingual-$engine-c$(lectern_setting ingest.chunk_tokens)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$out" "$work/named" "$work/also"

# The manuals the questions name, one workspace each (named after the file).
docs=$(python3 -c 'import json,sys
print("\n".join(sorted({json.loads(l)["doc"] for l in open(sys.argv[1]) if l.strip() and json.loads(l).get("doc")})))' "$qa")
for doc in $docs; do
    ws="ml-${doc%.pdf}"
    if [ ! -f "$data/.ingested-$doc" ]; then
        "$bin" --data-dir "$data" ingest --workspace "$ws" "$LECTERN_DEV_QA_ML_DIR/$doc" >&2
        touch "$data/.ingested-$doc"
    fi
    # named/: the questions about this manual. also/: the questions about another whose
    # `also` gives this manual's pages that answer them too, asked of this manual: pairs
    # of question and manual that no setting was chosen on.
    python3 - "$qa" "$doc" "$work" <<'PY'
import json, sys
qa, doc, work = sys.argv[1:]
with open(f"{work}/named/{doc}.jsonl", "w") as named, open(f"{work}/also/{doc}.jsonl", "w") as also:
    for line in open(qa):
        if not line.strip():
            continue
        item = json.loads(line)
        if item.get("doc") == doc:
            print(json.dumps(item), file=named)
        for other in item.get("also", []):
            if other["doc"] == doc:
                print(json.dumps(dict(item, doc=doc, pages=other["pages"], quote=other["quote"], also=[])), file=also)
PY
    for set in named also; do
        if [ -s "$work/$set/$doc.jsonl" ]; then
            "$bin" --data-dir "$data" eval qa --workspace "$ws" --retrieval-only --json "$work/$set/$doc.jsonl" >"$work/$set/$doc.json"
        fi
    done
done

python3 - "$work" "$engine" >"$out/multilingual-$engine.json" <<'PY'
import json, sys, pathlib
work, engine = pathlib.Path(sys.argv[1]), sys.argv[2]
doc_lang = lambda doc: doc.rsplit("-", 1)[-1].removesuffix(".pdf")
def rows(set):
    out = []
    for result in sorted((work / set).glob("*.json")):
        doc = result.name.removesuffix(".json")
        questions = {q["id"]: q for q in map(json.loads, open(result.with_suffix(".jsonl")))}
        for record in json.load(open(result))["questions"]:
            item = questions[record["id"]]
            if not item["answerable"]:
                continue
            out.append({"id": record["id"], "lang": item["lang"], "doc": doc,
                        "same_language": item["lang"] == doc_lang(doc),
                        "hit_at_1": record["hit_at_1"], "hit_at_5": record["hit_at_5"],
                        "expected": item["pages"], "found": record["sources"]})
    return out
def score(rs):
    n = len(rs)
    return {"questions": n,
            "page_hit_at_1": round(sum(r["hit_at_1"] for r in rs) / n, 4) if n else None,
            "page_hit_at_5": round(sum(r["hit_at_5"] for r in rs) / n, 4) if n else None}
named, also = rows("named"), rows("also")
summary = {"engine": engine,
           "same_language": score([r for r in named if r["same_language"]]),
           "cross_language": score([r for r in named if not r["same_language"]]),
           "all": score(named),
           "by_question_language": {l: score([r for r in named if r["lang"] == l]) for l in sorted({r["lang"] for r in named})},
           "other_manuals": {"same_language": score([r for r in also if r["same_language"]]),
                             "cross_language": score([r for r in also if not r["same_language"]])}}
print(json.dumps({"summary": summary, "records": named, "other_manuals": also}, indent=1))
PY
python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["summary"], indent=1))' "$out/multilingual-$engine.json"
