#!/usr/bin/env python3
"""Re-verify a question-answer evaluation set against the PDFs it cites.

Usage, from the repository root:
    set -a; eval "$(scripts/fetch-dev-qa.sh)"; set +a     # fetches the PDFs
    python3 tests/data/dev-qa/verify_qa.py [-v] [[QA_JSONL] PDF_DIR]

QA_JSONL defaults to the qa.jsonl beside this script; PDF_DIR to $LECTERN_DEV_QA_DIR, the
folder scripts/fetch-dev-qa.sh prints. QA_JSONL holds one JSON object per line:
    {"id", "question", "answerable", "doc", "pages", "quote", "answer", "answer_keywords", ...}

For every answerable entry the checker runs `pdftotext -f P -l P DOC -` (poppler-utils) on each
stated page (1-based physical page index, as pdftotext counts them) and checks that the quote is
on that page. Whitespace is normalised and words hyphenated across a line break are accepted both
joined ("exam-\\nple" -> "example") and with the hyphen kept ("command-\\nline" -> "command-line").
A quote may also run over consecutive stated pages. Typographic variants that differ between
poppler builds (ligatures, curly vs straight quotes, en/em dashes) are folded on both sides.

It also checks the record itself: required fields and types, a quote of 8-30 words, 1-3
answer_keywords that the expected answer contains, and null doc/pages/quote on unanswerable
entries. An unanswerable entry that lists `absent_terms` (the words an answer would need)
passes only when none of them appears on any page of the three documents.

PDF_DIR is searched recursively for each `doc` file name, so it may be a flat folder of PDFs or
the root of extracted Debian packages (`dpkg-deb -x PKG.deb ROOT`). A `DOC.gz` copy is accepted.

Prints one line per failure (and per entry with -v), then 'N passed, M failed'.
Exit status: 0 when nothing failed, 1 otherwise, 2 on usage errors.
"""

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata

REQUIRED = ("id", "question", "answerable", "doc", "pages", "quote", "answer", "answer_keywords")
MIN_WORDS, MAX_WORDS = 8, 30

# Characters that different poppler versions or fonts render differently.
FOLD = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "\u00b4": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
    "\u00a0": " ", "\u2009": " ", "\u202f": " ",
    "\u00ad": "",  # soft hyphen
    "\u0012": '"',  # a German opening quote as some PDFs' fonts map it
    "\u00ab": '"', "\u00bb": '"',  # guillemets
}
FOLD_TABLE = str.maketrans(FOLD)


def fold(text):
    """Unicode-normalise (ligatures, decomposed accents) and fold typographic variants."""
    text = re.sub("\u0131(?=[\u0300-\u036f])", "i", text)  # dotless i + accent -> i + accent
    return unicodedata.normalize("NFKC", text).translate(FOLD_TABLE)


def squash(text):
    return re.sub(r"\s+", " ", text).strip()


def page_variants(raw):
    """Normalised forms of a page text: hyphenated line breaks joined, and kept."""
    text = fold(raw)
    joined = squash(re.sub(r"(\w)-[ \t]*\n\s*", r"\1", text))
    kept = squash(re.sub(r"-[ \t]*\n\s*", "-", text))
    plain = squash(text)
    return {joined, kept, plain}


def normalise_quote(quote):
    return squash(fold(quote))


class PdfPages:
    """Finds PDFs under a folder and extracts single pages with pdftotext, with a cache."""

    def __init__(self, root):
        self.root = root
        self.index = {}
        for dirpath, _dirs, files in os.walk(root, followlinks=False):
            for name in files:
                path = os.path.join(dirpath, name)
                if os.path.isfile(path):  # follows symlinks, skips dangling ones
                    self.index.setdefault(name, path)
        self.tmp = tempfile.mkdtemp(prefix="verify_qa_")
        self.cache = {}
        self.page_counts = {}

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, doc):
        if doc in self.index:
            return self.index[doc]
        gz = self.index.get(doc + ".gz")
        if gz:
            out = os.path.join(self.tmp, doc)
            if not os.path.exists(out):
                with gzip.open(gz, "rb") as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            self.index[doc] = out
            return out
        return None

    def page_count(self, doc):
        if doc not in self.page_counts:
            path = self.path(doc)
            count = None
            if path:
                res = subprocess.run(["pdfinfo", path], capture_output=True, text=True)
                m = re.search(r"^Pages:\s+(\d+)", res.stdout, re.M)
                count = int(m.group(1)) if m else None
            self.page_counts[doc] = count
        return self.page_counts[doc]

    def text(self, doc, page):
        key = (doc, page)
        if key not in self.cache:
            path = self.path(doc)
            res = subprocess.run(
                ["pdftotext", "-enc", "UTF-8", "-f", str(page), "-l", str(page), path, "-"],
                capture_output=True,
            )
            if res.returncode != 0:
                raise RuntimeError(
                    "pdftotext failed on %s page %d: %s"
                    % (doc, page, res.stderr.decode("utf-8", "replace").strip())
                )
            self.cache[key] = res.stdout.decode("utf-8", "replace")
        return self.cache[key]


DOCS = ("gnuplot.pdf", "sample-sigconf.pdf", "auguide4-2.pdf")


def check_absent(rec, pdfs):
    """An unanswerable question names `absent_terms`, the words an answer would need; none
    may appear on any page of any document (whole-word, case-insensitive, after folding)."""
    terms = rec.get("absent_terms") or []
    if not terms:
        return None
    found = []
    for doc in DOCS:
        count = pdfs.page_count(doc)
        if count is None:
            return "%s is missing: fetch the PDFs (scripts/fetch-dev-qa.sh)" % doc
        text = squash(fold(" ".join(pdfs.text(doc, p) for p in range(1, count + 1)))).lower()
        for term in terms:
            if re.search(r"(?<![a-z])" + re.escape(term.lower()) + r"(?![a-z])", text):
                found.append("%s in %s" % (term, doc))
    return ("the documents hold %s" % ", ".join(found)) if found else None


def check_record(rec):
    """Problems with the record's shape, independent of the PDFs."""
    problems = []
    missing = [k for k in REQUIRED if k not in rec]
    if missing:
        return ["missing fields: " + ", ".join(missing)]
    if not isinstance(rec["id"], str) or not rec["id"]:
        problems.append("id must be a non-empty string")
    if not isinstance(rec["question"], str) or not rec["question"].strip():
        problems.append("question must be a non-empty string")
    if not isinstance(rec["answer"], str) or not rec["answer"].strip():
        problems.append("answer must be a non-empty string")
    if not isinstance(rec["answerable"], bool):
        problems.append("answerable must be true or false")
        return problems
    kws = rec["answer_keywords"]
    if rec["answerable"]:
        if not isinstance(rec["doc"], str) or not rec["doc"]:
            problems.append("doc must name a PDF file")
        pages = rec["pages"]
        if (not isinstance(pages, list) or not pages
                or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in pages)):
            problems.append("pages must be a non-empty list of 1-based page numbers")
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
    else:
        for key in ("doc", "pages", "quote"):
            if rec[key] is not None:
                problems.append("%s must be null for an unanswerable question" % key)
        if not isinstance(kws, list):
            problems.append("answer_keywords must be a list (empty for unanswerable questions)")
    return problems


def check_quote(rec, pdfs):
    """Where the quote was found (list of pages) or a problem string."""
    doc = rec["doc"]
    if pdfs.path(doc) is None:
        return None, "PDF %s not found under %s" % (doc, pdfs.root)
    count = pdfs.page_count(doc)
    pages = rec["pages"]
    bad = [p for p in pages if count is not None and p > count]
    if bad:
        return None, "page(s) %s beyond the document's %s pages" % (bad, count)
    quote = normalise_quote(rec["quote"])
    found = []
    for page in pages:
        if any(quote in v for v in page_variants(pdfs.text(doc, page))):
            found.append(page)
    if found:
        return found, None
    # A quote running over a page break: try consecutive stated pages together.
    ordered = sorted(set(pages))
    for a, b in zip(ordered, ordered[1:]):
        if b == a + 1:
            joined = pdfs.text(doc, a).rstrip("\f") + "\n" + pdfs.text(doc, b)
            if any(quote in v for v in page_variants(joined)):
                return [a, b], None
    return None, "quote not found on page(s) %s of %s" % (pages, doc)


def command_line(argv, usage, default_qa, pdf_dir_env):
    """`[-v] [QA_JSONL] [PDF_DIR]` read: `(qa_path, pdf_dir, verbose)`, or the exit status
    after saying what is wrong. QA_JSONL defaults to `default_qa`, PDF_DIR to the folder
    the environment variable `pdf_dir_env` names."""
    args = [a for a in argv[1:] if not a.startswith("-")]
    verbose = "-v" in argv[1:] or "--verbose" in argv[1:]
    if len(args) < 2:
        args.insert(0, default_qa)
    if len(args) < 2 and os.environ.get(pdf_dir_env):
        args.append(os.environ[pdf_dir_env])
    if len(args) != 2 or "-h" in argv[1:] or "--help" in argv[1:]:
        print(usage.strip(), file=sys.stderr)
        return 2
    qa_path, pdf_dir = args
    if not os.path.isdir(pdf_dir):
        print("not a folder: %s" % pdf_dir, file=sys.stderr)
        return 2
    if shutil.which("pdftotext") is None or shutil.which("pdfinfo") is None:
        print("pdftotext/pdfinfo not found: install poppler-utils", file=sys.stderr)
        return 2
    return qa_path, pdf_dir, verbose


def main(argv):
    parsed = command_line(
        argv, __doc__, os.path.join(os.path.dirname(os.path.abspath(__file__)), "qa.jsonl"),
        "LECTERN_DEV_QA_DIR")
    if isinstance(parsed, int):
        return parsed
    qa_path, pdf_dir, verbose = parsed
    pdfs = PdfPages(pdf_dir)
    passed = failed = 0
    seen_ids = set()
    try:
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
                rid = rec.get("id", "line %d" % lineno) if isinstance(rec, dict) else "line %d" % lineno
                if not isinstance(rec, dict):
                    print("FAIL %s: not a JSON object" % rid)
                    failed += 1
                    continue
                problems = check_record(rec)
                if rid in seen_ids:
                    problems.append("duplicate id")
                seen_ids.add(rid)
                where = None
                if not problems and not rec["answerable"]:
                    try:
                        problem = check_absent(rec, pdfs)
                    except RuntimeError as exc:
                        problem = str(exc)
                    if problem:
                        problems.append(problem)
                if not problems and rec["answerable"]:
                    try:
                        where, problem = check_quote(rec, pdfs)
                    except RuntimeError as exc:
                        problem = str(exc)
                    if problem:
                        problems.append(problem)
                if problems:
                    failed += 1
                    print("FAIL %s: %s" % (rid, "; ".join(problems)))
                else:
                    passed += 1
                    if verbose:
                        if rec["answerable"]:
                            print("ok   %s: %s p.%s" % (rid, rec["doc"], ",".join(map(str, where))))
                        else:
                            print("ok   %s: unanswerable" % rid)
    finally:
        pdfs.close()
    print("%d passed, %d failed" % (passed, failed))
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
