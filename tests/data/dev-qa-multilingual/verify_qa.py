#!/usr/bin/env python3
"""Re-verify the multilingual question-answer set against the PDFs it cites.

Usage, from the repository root:
    set -a; eval "$(scripts/fetch-dev-qa.sh multilingual)"; set +a     # fetches the PDFs
    python3 tests/data/dev-qa-multilingual/verify_qa.py [-v] [[QA_JSONL] PDF_DIR]

QA_JSONL defaults to the qa.jsonl beside this script; PDF_DIR to $LECTERN_DEV_QA_ML_DIR, the
folder `scripts/fetch-dev-qa.sh multilingual` prints. QA_JSONL holds one JSON object per line:
    {"id", "question", "lang", "answerable", "doc", "pages", "quote", "answer",
     "answer_keywords", "category", ["also"], ["absent_terms"]}

The checks follow tests/data/dev-qa/verify_qa.py. For every answerable entry the checker runs
`pdftotext -f P -l P DOC -` (poppler-utils) on each stated page (1-based physical page index) and
checks that the quote is on that page: Unicode NFKC, curly quotes and dashes folded to ASCII,
whitespace collapsed, a word hyphenated across a line break accepted both joined and with the
hyphen kept, a quote running over consecutive stated pages accepted. Two folds are added for
these PDFs, applied to page text and quote alike: pdftotext writes accented letters as base
letter plus combining accent, and NFKC cannot compose a dotless i with its accent ("ı́"), so a
dotless i followed by a combining mark becomes a plain i first ("í" in the quote matches); and
the German opening quotation mark, which these PDFs' fonts map to the control character U+0012,
is folded to '"' like the other double quotes.

Each `also` entry ({"doc", "pages", "quote"}: the same passage in another language's manual)
is checked the same way, with a quote of at least 3 words.

Unanswerable entries must have null doc/pages/quote, empty answer_keywords and `absent_terms`,
none of which may appear (whole word, case-insensitive, after folding) on any page of any of
the four documents.

Set-level checks: ids unique; `lang` in en/de/fr/es; `doc` one of the four PDFs; at least
MIN_TOTAL entries, at least MIN_LANGS question languages with MIN_PER_LANG entries each, at
least MIN_CROSS answerable entries whose question language differs from the document's, at
least MIN_UNANSWERABLE unanswerable entries. It prints the question-language x
document-language table.

Prints one line per failure (and per entry with -v), then 'N passed, M failed'.
Exit status: 0 when nothing failed, 1 otherwise, 2 on usage errors.
"""

import collections
import importlib.util
import json
import os
import re
import subprocess
import sys

LANGS = ("en", "de", "fr", "es")
DOCS = {"learning-%s.pdf" % lang: lang for lang in LANGS}
CATEGORIES = ("how-to", "factual", "definition", "unanswerable")
REQUIRED = ("id", "question", "lang", "answerable", "doc", "pages", "quote", "answer",
            "answer_keywords", "category")
MIN_WORDS, MAX_WORDS = 8, 30
MIN_ALSO_WORDS = 3
MIN_TOTAL, MIN_LANGS, MIN_PER_LANG, MIN_CROSS, MIN_UNANSWERABLE = 36, 3, 8, 12, 4

# The English set's text handling: folding, page variants, pages read with pdftotext.
_english = importlib.util.spec_from_file_location(
    "english_verify_qa",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dev-qa", "verify_qa.py"))
english = importlib.util.module_from_spec(_english)
_english.loader.exec_module(english)
fold, squash, page_variants, normalise_quote = (
    english.fold, english.squash, english.page_variants, english.normalise_quote)


class PdfPages(english.PdfPages):
    """The English set's page reader, with the whole text of a document at once."""

    def _extract_all(self, doc):
        """Every page of DOC in one pdftotext run (pages split at form feeds)."""
        path = self.path(doc)
        count = self.page_count(doc)
        res = subprocess.run(["pdftotext", "-enc", "UTF-8", path, "-"], capture_output=True)
        if res.returncode != 0:
            raise RuntimeError("pdftotext failed on %s: %s"
                               % (doc, res.stderr.decode("utf-8", "replace").strip()))
        parts = res.stdout.decode("utf-8", "replace").split("\f")
        return parts[:count] if count and len(parts) >= count else None

    def all_text(self, doc):
        """Folded, lower-cased text of the whole document (for absent_terms)."""
        key = (doc, "all")
        if key not in self.cache:
            count = self.page_count(doc)
            pages = self._extract_all(doc)
            if pages is None:
                pages = [self.text(doc, p) for p in range(1, count + 1)]
            self.cache[key] = squash(fold(" ".join(pages))).lower()
        return self.cache[key]


def check_absent(rec, pdfs):
    """None of the `absent_terms` may appear on any page of the four documents."""
    found = []
    for doc in DOCS:
        if pdfs.page_count(doc) is None:
            return "%s is missing: fetch the PDFs (scripts/fetch-dev-qa.sh multilingual)" % doc
        text = pdfs.all_text(doc)
        for term in rec["absent_terms"]:
            term = squash(fold(term)).lower()
            if re.search(r"(?<!\w)" + re.escape(term) + r"(?!\w)", text):
                found.append("%s in %s" % (term, doc))
    return ("the documents hold %s" % ", ".join(found)) if found else None


def valid_pages(pages):
    return (isinstance(pages, list) and pages
            and all(isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in pages))


def check_record(rec):
    """Problems with the record's shape, independent of the PDFs."""
    problems = []
    missing = [k for k in REQUIRED if k not in rec]
    if missing:
        return ["missing fields: " + ", ".join(missing)]
    for key in ("id", "question", "answer"):
        if not isinstance(rec[key], str) or not rec[key].strip():
            problems.append("%s must be a non-empty string" % key)
    if rec["lang"] not in LANGS:
        problems.append("lang must be one of %s" % ", ".join(LANGS))
    if rec["category"] not in CATEGORIES:
        problems.append("category must be one of %s" % ", ".join(CATEGORIES))
    if not isinstance(rec["answerable"], bool):
        problems.append("answerable must be true or false")
        return problems
    kws = rec["answer_keywords"]
    if rec["answerable"]:
        if rec["doc"] not in DOCS:
            problems.append("doc must be one of %s" % ", ".join(DOCS))
        if not valid_pages(rec["pages"]):
            problems.append("pages must be a non-empty list of 1-based page numbers")
        if rec["category"] == "unanswerable":
            problems.append("an answerable entry cannot have category unanswerable")
        if not isinstance(rec["quote"], str) or not rec["quote"].strip():
            problems.append("quote must be a non-empty string")
        else:
            words = len(normalise_quote(rec["quote"]).split(" "))
            if not MIN_WORDS <= words <= MAX_WORDS:
                problems.append("quote has %d words, want %d-%d" % (words, MIN_WORDS, MAX_WORDS))
        if not isinstance(kws, list) or not 1 <= len(kws) <= 3 or not all(
                isinstance(k, str) and k.strip() for k in kws):
            problems.append("answer_keywords must be a list of 1-3 non-empty strings")
        elif isinstance(rec["answer"], str):
            absent = [k for k in kws if k.lower() not in rec["answer"].lower()]
            if absent:
                problems.append("expected answer lacks its own keywords: %s" % absent)
        also = rec.get("also", [])
        if not isinstance(also, list):
            problems.append("also must be a list")
        else:
            for item in also:
                if (not isinstance(item, dict) or item.get("doc") not in DOCS
                        or item.get("doc") == rec["doc"] or not valid_pages(item.get("pages"))
                        or not isinstance(item.get("quote"), str)
                        or len(normalise_quote(item["quote"]).split(" ")) < MIN_ALSO_WORDS):
                    problems.append("also entries need another doc, pages and a quote of %d+ "
                                    "words: %s" % (MIN_ALSO_WORDS, json.dumps(item)))
    else:
        for key in ("doc", "pages", "quote"):
            if rec[key] is not None:
                problems.append("%s must be null for an unanswerable question" % key)
        if kws != []:
            problems.append("answer_keywords must be empty for an unanswerable question")
        if rec["category"] != "unanswerable":
            problems.append("category must be unanswerable")
        terms = rec.get("absent_terms")
        if not isinstance(terms, list) or not terms or not all(
                isinstance(t, str) and t.strip() for t in terms):
            problems.append("absent_terms must list the words an answer would need")
        if rec.get("also"):
            problems.append("also must be absent for an unanswerable question")
    return problems


def find_quote(pdfs, doc, pages, quote):
    """Where the quote was found (list of pages) or a problem string."""
    if pdfs.path(doc) is None:
        return None, "PDF %s not found under %s" % (doc, pdfs.root)
    count = pdfs.page_count(doc)
    bad = [p for p in pages if count is not None and p > count]
    if bad:
        return None, "page(s) %s beyond %s's %s pages" % (bad, doc, count)
    quote = normalise_quote(quote)
    found = [p for p in pages if any(quote in v for v in page_variants(pdfs.text(doc, p)))]
    if found:
        return found, None
    ordered = sorted(set(pages))
    for a, b in zip(ordered, ordered[1:]):
        if b == a + 1:
            joined = pdfs.text(doc, a).rstrip("\f") + "\n" + pdfs.text(doc, b)
            if any(quote in v for v in page_variants(joined)):
                return [a, b], None
    return None, "quote not found on page(s) %s of %s" % (pages, doc)


def check_quotes(rec, pdfs):
    where, problem = find_quote(pdfs, rec["doc"], rec["pages"], rec["quote"])
    problems = [problem] if problem else []
    for item in rec.get("also", []):
        _w, problem = find_quote(pdfs, item["doc"], item["pages"], item["quote"])
        if problem:
            problems.append("also: " + problem)
    return where, problems


def check_set(records):
    """Set-level minimums; returns (problems, table lines)."""
    problems = []
    by_lang = collections.Counter(r.get("lang") for r in records)
    table = collections.Counter()
    cross = unanswerable = 0
    for r in records:
        if r.get("answerable") is True and r.get("doc") in DOCS:
            table[(r.get("lang"), DOCS[r["doc"]])] += 1
            if r.get("lang") != DOCS[r["doc"]]:
                cross += 1
        elif r.get("answerable") is False:
            unanswerable += 1
            table[(r.get("lang"), "none")] += 1
    if len(records) < MIN_TOTAL:
        problems.append("%d entries, want at least %d" % (len(records), MIN_TOTAL))
    full = [lang for lang in LANGS if by_lang[lang] >= MIN_PER_LANG]
    if len(full) < MIN_LANGS:
        problems.append("%d question languages with %d+ entries (%s), want %d"
                        % (len(full), MIN_PER_LANG, dict(by_lang), MIN_LANGS))
    if cross < MIN_CROSS:
        problems.append("%d cross-language entries, want at least %d" % (cross, MIN_CROSS))
    if unanswerable < MIN_UNANSWERABLE:
        problems.append("%d unanswerable entries, want at least %d"
                        % (unanswerable, MIN_UNANSWERABLE))
    cols = LANGS + ("none",)
    lines = ["question \\ doc  " + " ".join("%5s" % c for c in cols) + "  total"]
    for q in LANGS:
        row = [table[(q, c)] for c in cols]
        lines.append("%-15s  " % q + " ".join("%5d" % n for n in row) + "  %5d" % sum(row))
    totals = [sum(table[(q, c)] for q in LANGS) for c in cols]
    lines.append("%-15s  " % "total" + " ".join("%5d" % n for n in totals)
                 + "  %5d" % sum(totals))
    lines.append("cross-language (answerable, question language != document language): %d"
                 % cross)
    return problems, lines


def main(argv):
    parsed = english.command_line(
        argv, __doc__, os.path.join(os.path.dirname(os.path.abspath(__file__)), "qa.jsonl"),
        "LECTERN_DEV_QA_ML_DIR")
    if isinstance(parsed, int):
        return parsed
    qa_path, pdf_dir, verbose = parsed
    pdfs = PdfPages(pdf_dir)
    try:
        return verify(qa_path, pdfs, verbose)
    finally:
        pdfs.close()


def verify(qa_path, pdfs, verbose):
    passed = failed = 0
    seen_ids = set()
    records = []
    with open(qa_path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                print("FAIL line %d: not JSON (%s)" % (lineno, exc))
                failed += 1
                continue
            if not isinstance(rec, dict):
                print("FAIL line %d: not a JSON object" % lineno)
                failed += 1
                continue
            rid = rec.get("id", "line %d" % lineno)
            records.append(rec)
            problems = check_record(rec)
            if rid in seen_ids:
                problems.append("duplicate id")
            seen_ids.add(rid)
            where = None
            try:
                if not problems and not rec["answerable"]:
                    problem = check_absent(rec, pdfs)
                    if problem:
                        problems.append(problem)
                if not problems and rec["answerable"]:
                    where, more = check_quotes(rec, pdfs)
                    problems.extend(more)
            except RuntimeError as exc:
                problems.append(str(exc))
            if problems:
                failed += 1
                print("FAIL %s: %s" % (rid, "; ".join(problems)))
            else:
                passed += 1
                if verbose:
                    if rec["answerable"]:
                        also = "".join(" +%s p.%s" % (a["doc"], ",".join(map(str, a["pages"])))
                                       for a in rec.get("also", []))
                        print("ok   %s [%s]: %s p.%s%s" % (rid, rec["lang"], rec["doc"],
                                                         ",".join(map(str, where)), also))
                    else:
                        print("ok   %s [%s]: unanswerable" % (rid, rec["lang"]))
    set_problems, table = check_set(records)
    for line in table:
        print(line)
    for problem in set_problems:
        print("FAIL set: %s" % problem)
        failed += 1
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
