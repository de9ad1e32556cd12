#!/usr/bin/env python3
"""Turns the development question set into a BEIR-format retrieval dataset.

Each page of each dev-set PDF becomes one corpus document (`<file>#p<page>`, text
extracted with PDFium through pypdfium2); each answerable question becomes a query whose
relevant documents are the pages that answer it. Unanswerable questions have no
judgements and are left out, as BEIR does.

Usage: make-beir-dev-qa.py QA_JSONL PDF_DIR OUT_DIR
(`scripts/eval.sh` runs it; pypdfium2 is installed from PyPI when missing.)
"""
import json
import os
import sys

import pypdfium2 as pdfium

qa_path, pdf_dir, out = sys.argv[1:4]
questions = [json.loads(line) for line in open(qa_path) if line.strip()]
docs = sorted({q["doc"] for q in questions if q.get("doc")})
os.makedirs(os.path.join(out, "qrels"), exist_ok=True)

with open(os.path.join(out, "corpus.jsonl"), "w") as corpus:
    for name in docs:
        pdf = pdfium.PdfDocument(os.path.join(pdf_dir, name))
        for i in range(len(pdf)):
            text = pdf[i].get_textpage().get_text_range().replace("\r\n", "\n")
            if text.strip():
                corpus.write(json.dumps({"_id": f"{name}#p{i + 1}", "title": os.path.splitext(name)[0], "text": text}) + "\n")

with open(os.path.join(out, "queries.jsonl"), "w") as qf, open(os.path.join(out, "qrels", "test.tsv"), "w") as rf:
    rf.write("query-id\tcorpus-id\tscore\n")
    for q in questions:
        if not q["answerable"]:
            continue
        qf.write(json.dumps({"_id": q["id"], "text": q["question"]}) + "\n")
        for page in q["pages"]:
            rf.write(f"{q['id']}\t{q['doc']}#p{page}\t1\n")
print(out)
