#!/usr/bin/env python3
"""Compares `lectern ask --json` answers of two runs question by question (CPU and GPU).

Each run is a folder of NN.json files, one per question, as `lectern ask --json` printed
them (an empty or unreadable file counts as a failed ask). With greedy decoding the two
engines should write the same answer with the same citations; floating-point sums in
another order (the GPU's kernels) can flip a near-tie between two tokens, after which the
texts part. So each question is reported as:

  identical      same answer text, same citations (number, chunk, page), same abstention
  cited alike    same citations and abstention, the text differs after a common prefix
  differs        citations or abstention differ, or one side failed

Usage: compare_answers.py --questions Q.txt --a DIR --b DIR [--a-name cpu] [--b-name gpu]
                          [--out result.json]
Exit status 0 when no question `differs` (a divergence of text alone is reported, not
failed: the first differing character is given so that a reader can judge it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys


def load(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read().strip()
        # The JSON object is the last line printed (logs go to stderr, but be lenient).
        return json.loads(text.splitlines()[-1]) if text else None
    except (OSError, ValueError, IndexError):
        return None


def cites(a: dict) -> list:
    return [(c.get("n"), c.get("chunk_id"), c.get("page")) for c in a.get("citations", [])]


def prefix(x: str, y: str) -> int:
    n = 0
    for cx, cy in zip(x, y):
        if cx != cy:
            break
        n += 1
    return n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", required=True)
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--a-name", default="cpu")
    ap.add_argument("--b-name", default="gpu")
    ap.add_argument("--out")
    args = ap.parse_args()

    questions = [q.strip() for q in open(args.questions, encoding="utf-8") if q.strip() and not q.startswith("#")]
    rows = []
    for i, q in enumerate(questions, 1):
        a = load(os.path.join(args.a, f"{i:02d}.json"))
        b = load(os.path.join(args.b, f"{i:02d}.json"))
        row = {"n": i, "question": q}
        if a is None or b is None:
            row["verdict"] = "differs"
            row["why"] = f"{args.a_name if a is None else args.b_name} gave no answer"
        else:
            ta, tb = a.get("answer", ""), b.get("answer", "")
            same_cites = cites(a) == cites(b)
            same_abstain = (a.get("abstained"), a.get("extractive")) == (b.get("abstained"), b.get("extractive"))
            p = prefix(ta, tb)
            row.update(
                {
                    "chars": [len(ta), len(tb)],
                    "common_prefix_chars": p,
                    "citations": [len(a.get("citations", [])), len(b.get("citations", []))],
                    "completion_tokens": [
                        a.get("timings", {}).get("completion_tokens"),
                        b.get("timings", {}).get("completion_tokens"),
                    ],
                    "abstained": [a.get("abstained"), b.get("abstained")],
                    "extractive": [a.get("extractive"), b.get("extractive")],
                }
            )
            if ta == tb and same_cites and same_abstain:
                row["verdict"] = "identical"
            elif same_cites and same_abstain:
                row["verdict"] = "cited alike"
                row["why"] = f"text parts at character {p}: {ta[p:p + 40]!r} / {tb[p:p + 40]!r}"
            else:
                row["verdict"] = "differs"
                row["why"] = "citations differ" if not same_cites else "abstention differs"
                row["cites"] = [cites(a), cites(b)]
            row["answers"] = [ta[:600], tb[:600]]
        rows.append(row)

    counts = {v: sum(r["verdict"] == v for r in rows) for v in ("identical", "cited alike", "differs")}
    asked = sum(1 for r in rows if r.get("abstained") and not any(r["abstained"]))
    result = {
        "names": [args.a_name, args.b_name],
        "questions": len(rows),
        "counts": counts,
        "model_asked": asked,
        "rows": rows,
    }
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=1)
    for r in rows:
        print(f"  {r['n']:2d}. {r['verdict']:<11} {r['question'][:70]}" + (f"  ({r['why']})" if r.get("why") else ""))
    print(
        f"compare_answers: {args.a_name} vs {args.b_name}: {counts['identical']} identical, "
        f"{counts['cited alike']} cited alike, {counts['differs']} differ, of {len(rows)} "
        f"({asked} answered by the model, not abstained)"
    )
    return 1 if counts["differs"] else 0


if __name__ == "__main__":
    sys.exit(main())
