#!/usr/bin/env python3
"""Makes hostile files, and good ones beside them, from real documents: the input of the
hostile-upload drill (scripts/drill/hostile.sh, docs/RELIABILITY.md).

Seeds: the development set's PDFs ($LECTERN_DEV_QA_DIR, scripts/fetch-dev-qa.sh), the hard
PDFs of the parser tests ($LECTERN_TEST_DOCS_DIR, scripts/fetch-test-docs.sh: encrypted,
scanned, malformed), any files of --seeds DIR, and DOCX, HTML, Markdown and text files
built here from the text of the development PDFs (pdftotext). A PDF of more than
--max-pages pages also gives single pages (pdfseparate), so that most mutations cost
what a real upload does.

Mutations, chosen deterministically from --seed (every kind in turn, in a shuffled order,
so that a small --count still has each): bit flips (1..100 bytes), truncation at a random
point, chunks duplicated and shuffled, a zip bomb (a DOCX whose word/document.xml unpacks
to 64 MB), HTML nested 100,000 levels deep, a DOCX whose XML is nested 100,000 levels
deep, a PDF page of 200,000 x 200,000 points, a PDF of thousands of empty pages, an HTML
page of 5 MB on a single line, text that is not UTF-8, empty files, and real files under
a misleading extension.

Writes hostile-NNNN.<ext> and good-NNNN.<ext> (unmodified seeds, each with distinct
bytes) into --out, a manifest of every file in --out/.manifest.json (hidden: `lectern
ingest` skips it), and prints a JSON summary on stdout.

Usage: mutate.py --out DIR [--count N] [--good K] [--seed S] [--dev-qa DIR]
                 [--test-docs DIR] [--seeds DIR]... [--max-pages P]
Needs poppler-utils (pdftotext, pdfinfo, pdfseparate).
"""
import argparse
import hashlib
import html
import io
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile

EXTS = ["pdf", "docx", "html", "md", "txt"]
DOCX_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def die(message):
    print(f"mutate: {message}", file=sys.stderr)
    sys.exit(2)


# --- seeds -------------------------------------------------------------------------------


class Seed:
    """One real document: its name, type, bytes, and (for built ones) its paragraphs."""

    def __init__(self, name, ext, data, good, paragraphs=None, title=None):
        self.name = name
        self.ext = ext
        self.data = data
        self.good = good
        self.paragraphs = paragraphs
        self.title = title


def run(args):
    return subprocess.run(args, check=True, capture_output=True).stdout


def pdf_pages(path):
    try:
        info = run(["pdfinfo", path]).decode("utf-8", "replace")
    except subprocess.CalledProcessError:
        return None  # encrypted, damaged: still a seed, whole
    m = re.search(r"^Pages:\s+(\d+)", info, re.M)
    return int(m.group(1)) if m else None


def paragraphs_of(text):
    """Paragraphs of pdftotext's output: blank-line separated, whitespace collapsed,
    without the page furniture (numbers, running heads)."""
    out = []
    for block in re.split(r"\n\s*\n|\f", text):
        para = " ".join(block.split())
        if len(para) >= 40 and sum(c.isalpha() for c in para) > len(para) // 2:
            out.append(para)
    return out


def build_docx(title, paragraphs, extra=None):
    """A minimal, valid Word document: [Content_Types].xml, _rels/.rels and
    word/document.xml, the title and every eighth paragraph's opening as headings."""
    body = [docx_paragraph(title, "Title")]
    for i, para in enumerate(paragraphs):
        if i % 8 == 0:
            body.append(docx_paragraph(heading_of(para), "Heading1"))
        body.append(docx_paragraph(para))
    if extra:
        body.append(docx_paragraph(extra))
    return docx_package(docx_document("".join(body)))


def docx_paragraph(text, style=None):
    props = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f'<w:p>{props}<w:r><w:t xml:space="preserve">{html.escape(text, quote=False)}</w:t></w:r></w:p>'


def docx_document(body):
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        f'<w:document xmlns:w="{W_NS}"><w:body>{body}</w:body></w:document>'
    )


CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>"
)
RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" '
    'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/></Relationships>'
)


def docx_package(document_xml, document_chunks=None):
    """The package around `document_xml` (str), or around the bytes `document_chunks`
    yields, streamed into the archive (for a zip bomb, never held whole)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for name, text in (("[Content_Types].xml", CONTENT_TYPES), ("_rels/.rels", RELS)):
            z.writestr(zipfile.ZipInfo(name, DOCX_ZIP_DATE), text, zipfile.ZIP_DEFLATED)
        info = zipfile.ZipInfo("word/document.xml", DOCX_ZIP_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        if document_chunks is None:
            z.writestr(info, document_xml)
        else:
            with z.open(info, "w", force_zip64=True) as f:
                for chunk in document_chunks:
                    f.write(chunk)
    return out.getvalue()


def heading_of(para):
    words = para.split()[:6]
    return " ".join(words).rstrip(".,;:")


def build_html(title, paragraphs, extra=None):
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        f"<title>{html.escape(title)}</title>\n</head>\n<body>\n",
        "<nav><a href=\"#\">Home</a> | <a href=\"#\">Contents</a></nav>\n<main>\n",
        f"<h1>{html.escape(title)}</h1>\n",
    ]
    for i, para in enumerate(paragraphs):
        if i % 8 == 0:
            parts.append(f"<h2>{html.escape(heading_of(para))}</h2>\n")
        parts.append(f"<p>{html.escape(para)}</p>\n")
    parts.append("</main>\n")
    if extra:
        parts.append(f"<!-- {extra} -->\n")
    parts.append("</body>\n</html>\n")
    return "".join(parts).encode()


def build_markdown(title, paragraphs, extra=None):
    parts = [f"# {title}\n\n"]
    for i, para in enumerate(paragraphs):
        if i % 8 == 0:
            parts.append(f"## {heading_of(para)}\n\n")
        parts.append(para + "\n\n")
    if extra:
        parts.append(extra + "\n")
    return "".join(parts).encode()


def build_text(title, paragraphs, extra=None):
    text = title + "\n\n" + "\n\n".join(paragraphs) + "\n"
    if extra:
        text += "\n" + extra + "\n"
    return text.encode()


BUILDERS = {"docx": build_docx, "html": build_html, "md": build_markdown, "txt": build_text}


def collect_seeds(args, scratch):
    seeds = []
    texts = []  # (title, paragraphs) of the development PDFs
    pdf_dirs = [(args.dev_qa, True), (args.test_docs, False)]
    for directory, good in pdf_dirs:
        if not directory or not os.path.isdir(directory):
            continue
        for name in sorted(os.listdir(directory)):
            if name.lower().endswith(".pdf"):
                add_pdf(seeds, texts, os.path.join(directory, name), good, args.max_pages, scratch)
    for directory in args.seeds:
        if not os.path.isdir(directory):
            die(f"--seeds {directory} is not a folder")
        for name in sorted(os.listdir(directory)):
            path = os.path.join(directory, name)
            ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
            if not os.path.isfile(path) or ext not in EXTS:
                continue
            if ext == "pdf":
                add_pdf(seeds, texts, path, True, args.max_pages, scratch)
            else:
                seeds.append(Seed(name, ext, open(path, "rb").read(), True))
    if not any(s.ext == "pdf" for s in seeds):
        die(
            "no seed PDFs: set LECTERN_DEV_QA_DIR and LECTERN_TEST_DOCS_DIR "
            '(eval "$(scripts/fetch-dev-qa.sh)"; eval "$(scripts/fetch-test-docs.sh)"), '
            "or give --dev-qa, --test-docs or --seeds"
        )
    # DOCX, HTML, Markdown and text documents from the PDFs' own words: four sections of
    # each, forty paragraphs at most.
    for title, paragraphs in texts:
        if not paragraphs:
            continue
        size = max(1, min(40, len(paragraphs) // 4 or 1))
        for part in range(4):
            section = paragraphs[part * size : (part + 1) * size]
            if not section:
                break
            name = f"{title}-part{part + 1}"
            for ext, build in BUILDERS.items():
                seeds.append(Seed(f"{name}.{ext}", ext, build(name, section), True, section, name))
    return seeds, texts


def add_pdf(seeds, texts, path, good, max_pages, scratch):
    name = os.path.basename(path)
    data = open(path, "rb").read()
    seeds.append(Seed(name, "pdf", data, good))
    pages = pdf_pages(path)
    if good:
        try:
            text = run(["pdftotext", "-enc", "UTF-8", path, "-"]).decode("utf-8", "replace")
        except subprocess.CalledProcessError:
            text = ""
        texts.append((name[:-4], paragraphs_of(text)))
    if pages and pages > max_pages:
        # Thirty single pages spread over the document, each a real one-page PDF.
        wanted = sorted({1 + (i * (pages - 1)) // 29 for i in range(30)})
        out_dir = os.path.join(scratch, name[:-4])
        os.makedirs(out_dir, exist_ok=True)
        for page in wanted:
            target = os.path.join(out_dir, f"{name[:-4]}-p{page:04d}.pdf")
            try:
                run(["pdfseparate", "-f", str(page), "-l", str(page), path, target])
                words = run(["pdftotext", "-enc", "UTF-8", target, "-"]).decode("utf-8", "replace")
            except subprocess.CalledProcessError:
                continue
            # A page of figures alone is no good copy: it would fail, rightly, as "no text".
            has_text = sum(c.isalpha() for c in words) >= 200
            data = stable_id(open(target, "rb").read(), f"{name}#{page}")
            seeds.append(Seed(os.path.basename(target), "pdf", data, good and has_text))


def stable_id(data, key):
    """The PDF with the random file identifier pdfseparate writes in its trailer (after
    the cross-reference table, so no offset moves) replaced by one made from `key`: the
    same seed gives the same files."""
    at = data.rfind(b"/ID [")
    if at < 0:
        return data
    i = at + len(b"/ID [")
    for _ in range(2):
        while i < len(data) and data[i : i + 1] in b" \r\n":
            i += 1
        if data[i : i + 1] == b"<":
            i = data.index(b">", i) + 1
            continue
        if data[i : i + 1] != b"(":
            return data
        depth = 0
        while True:
            if i >= len(data):
                return data
            c = data[i : i + 1]
            if c == b"\\":
                i += 2
                continue
            depth += {b"(": 1, b")": -1}.get(c, 0)
            i += 1
            if depth == 0:
                break
    end = data.index(b"]", i) + 1
    digest = hashlib.md5(key.encode()).hexdigest().encode()
    return data[:at] + b"/ID [<" + digest + b"><" + digest + b">]" + data[end:]


# --- hand-written PDFs -------------------------------------------------------------------


def pdf_string(text):
    text = text.encode("ascii", "replace").decode()
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def write_pdf(pages):
    """A valid PDF (correct cross-reference table) of `pages`: (width, height, lines),
    lines None for an empty page. Text in Helvetica, 12 points, from the top left."""
    objects = [None, None, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for width, height, lines in pages:
        page = f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}]"
        if lines:
            ops = [f"BT /F1 12 Tf 14 TL 72 {height - 72} Td"]
            ops += [f"{pdf_string(line)} Tj T*" for line in lines]
            ops.append("ET")
            stream = "\n".join(ops).encode()
            objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
            page += f" /Resources << /Font << /F1 3 0 R >> >> /Contents {len(objects)} 0 R"
        objects.append((page + " >>").encode())
        kids.append(f"{len(objects)} 0 R")
    objects[0] = b"<< /Type /Catalog /Pages 2 0 R >>"
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {len(kids)} >>".encode()
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def wrap(paragraphs, width=90, limit=45):
    lines = []
    for para in paragraphs:
        line = ""
        for word in para.split():
            if len(line) + len(word) + 1 > width:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}".strip()
        lines.append(line)
        lines.append("")
        if len(lines) >= limit:
            break
    return lines[:limit]


# --- mutations ---------------------------------------------------------------------------


class Mutator:
    def __init__(self, rng, seeds, texts):
        self.rng = rng
        self.seeds = seeds
        self.paragraphs = [p for _, paras in texts for p in paras] or [
            "Lectern reads documents and answers questions about them with citations."
        ]

    def any_seed(self):
        return self.rng.choice([s for s in self.seeds if s.data])

    def seed_of(self, ext):
        return self.rng.choice([s for s in self.seeds if s.ext == ext] or self.seeds)

    def passage(self, n):
        start = self.rng.randrange(len(self.paragraphs))
        return (self.paragraphs * 2)[start : start + n]

    # Each returns (bytes, extension, seed name, detail).

    def bitflip(self):
        seed = self.any_seed()
        data = bytearray(seed.data)
        n = self.rng.randint(1, 100)
        for _ in range(n):
            i = self.rng.randrange(len(data))
            data[i] ^= self.rng.randint(1, 255)
        return bytes(data), seed.ext, seed.name, f"{n} bytes flipped"

    def truncate(self):
        seed = self.any_seed()
        cut = self.rng.randint(1, max(1, len(seed.data) - 1))
        return seed.data[:cut], seed.ext, seed.name, f"cut at {cut} of {len(seed.data)} bytes"

    def shuffle(self):
        seed = self.any_seed()
        data = seed.data
        n = self.rng.randint(4, 64)
        cuts = sorted(self.rng.sample(range(1, len(data)), min(n - 1, len(data) - 1)))
        pieces = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        pieces += [p for p in pieces if self.rng.random() < 0.2]
        self.rng.shuffle(pieces)
        return b"".join(pieces), seed.ext, seed.name, f"{len(pieces)} chunks duplicated and shuffled"

    def zip_bomb(self):
        size = 64 << 20
        para = docx_paragraph(" ".join(self.passage(1))).encode()
        head = docx_document("").split("<w:body>")[0].encode() + b"<w:body>"
        tail = b"</w:body></w:document>"
        block = para * max(1, (1 << 20) // len(para))

        def chunks():
            yield head
            written = len(head)
            while written + len(block) < size:
                yield block
                written += len(block)
            yield tail

        return docx_package(None, chunks()), "docx", "-", "word/document.xml unpacks to 64 MB"

    def nested_html(self):
        depth = 100_000
        tag = self.rng.choice(["div", "span", "section", "b", "blockquote", "table"])
        closed = self.rng.random() < 0.5
        text = html.escape(" ".join(self.passage(3)))
        page = (
            "<!DOCTYPE html><html><head><title>Nested</title></head><body>"
            f"<p>{html.escape(self.passage(1)[0])}</p>"
            + f"<{tag}>" * depth
            + f"<p>{text}</p>"
            + (f"</{tag}>" * depth if closed else "")
            + "</body></html>"
        )
        return page.encode(), "html", "-", f"{depth} nested <{tag}>, {'closed' if closed else 'never closed'}"

    def nested_docx(self):
        depth = 100_000
        tag = self.rng.choice(["w:customXml", "w:sdt", "w:smartTag", "w:ins"])
        inner = "".join(docx_paragraph(p) for p in self.passage(3))
        body = f"<{tag}>" * depth + inner + f"</{tag}>" * depth
        return docx_package(docx_document(body)), "docx", "-", f"{depth} nested <{tag}>"

    def huge_page(self):
        edge = 200_000
        seed = self.seed_of("pdf")
        box = re.compile(rb"/MediaBox\s*\[[^\]]*\]")
        if box.search(seed.data) and self.rng.random() < 0.5:
            data = box.sub(b"/MediaBox [0 0 %d %d]" % (edge, edge), seed.data)
            return data, "pdf", seed.name, f"every MediaBox made {edge} x {edge} (offsets now wrong)"
        pages = [(edge, edge, wrap(self.passage(4))) for _ in range(self.rng.randint(1, 3))]
        return write_pdf(pages), "pdf", "-", f"{len(pages)} pages of {edge} x {edge} points"

    def many_pages(self):
        n = self.rng.randint(2_000, 20_000)
        pages = [(612, 792, None)] * n
        with_text = self.rng.random() < 0.5
        if with_text:
            pages = pages + [(612, 792, wrap(self.passage(3)))]
        return write_pdf(pages), "pdf", "-", f"{n} empty pages" + (" and one of text" if with_text else "")

    def long_line(self):
        # Mostly markup, as minified pages with inline data are: the parser meets the 5 MB
        # line, while the text (some 30 KB) costs the embedder what a short document does.
        size = 5 << 20
        words = " ".join(self.passage(50)).split()
        parts = ["<!DOCTYPE html><html><head><title>One line</title></head><body><main>"]
        total = len(parts[0])
        i = 0
        while total < size:
            payload = hashlib.sha256(b"%d" % i).hexdigest() * 16
            piece = (
                f'<span class="c{i % 7}" data-k="{i}" data-state="{payload}">'
                f"{html.escape(words[i % len(words)])}</span> "
            )
            parts.append(piece)
            total += len(piece)
            i += 1
        parts.append("</main></body></html>")
        return "".join(parts).encode(), "html", "-", f"{total} bytes on one line"

    def not_utf8(self):
        text = "\n\n".join(self.passage(6))
        variant = self.rng.choice(["cp1252", "utf16", "invalid", "latin1-html"])
        if variant == "cp1252":
            accented = text.replace(" the ", " the café’s “naïve” ", 3)
            return accented.encode("cp1252", "replace"), "txt", "-", "Windows-1252 text"
        if variant == "utf16":
            ext = self.rng.choice(["txt", "md"])
            return "\ufeff".encode("utf-16-le") + text.encode("utf-16-le"), ext, "-", "UTF-16 with a byte order mark"
        if variant == "invalid":
            data = bytearray(text.encode())
            n = self.rng.randint(1, 50)
            for _ in range(n):
                data.insert(self.rng.randrange(len(data) + 1), self.rng.randint(0x80, 0xFF))
            return bytes(data), "md", "-", f"{n} stray bytes over 0x7f"
        page = (
            '<html><head><meta charset="iso-8859-1"><title>Entrée</title></head><body>'
            f"<p>{html.escape(text)} Déjà vu, señor.</p></body></html>"
        )
        return page.encode("latin-1", "replace"), "html", "-", "ISO-8859-1 HTML"

    def empty(self):
        ext = self.rng.choice(EXTS)
        if self.rng.random() < 0.7:
            return b"", ext, "-", "no bytes"
        return b" \n\t\n  \n", ext, "-", "only whitespace"

    def misleading_extension(self):
        seed = self.any_seed()
        ext = self.rng.choice([e for e in EXTS + [""] if e != seed.ext])
        return seed.data, ext, seed.name, f"a {seed.ext} named .{ext}" if ext else f"a {seed.ext} without extension"


KINDS = [
    "bitflip",
    "truncate",
    "shuffle",
    "zip_bomb",
    "nested_html",
    "nested_docx",
    "huge_page",
    "many_pages",
    "long_line",
    "not_utf8",
    "empty",
    "misleading_extension",
]


def good_copy(seed, n):
    """The seed unmodified in content, with bytes of its own."""
    mark = f"Copy {n} of this document."
    if seed.ext == "pdf":
        return seed.data + f"\n% good {n}\n".encode()
    if seed.paragraphs is not None:
        return BUILDERS[seed.ext](seed.title, seed.paragraphs, mark)
    if seed.ext == "html":
        return seed.data + f"\n<!-- good {n} -->\n".encode()
    if seed.ext in ("md", "txt"):
        return seed.data + f"\n\n{mark}\n".encode()
    return None  # a DOCX given with --seeds: no way to vary it without rebuilding


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--count", type=int, default=1000, help="hostile files")
    parser.add_argument("--good", type=int, default=20, help="good files (unmodified seeds)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--dev-qa", default=os.environ.get("LECTERN_DEV_QA_DIR"))
    parser.add_argument("--test-docs", default=os.environ.get("LECTERN_TEST_DOCS_DIR"))
    parser.add_argument("--seeds", action="append", default=[], metavar="DIR")
    parser.add_argument("--max-pages", type=int, default=60)
    args = parser.parse_args()
    for tool in ("pdftotext", "pdfinfo", "pdfseparate"):
        if shutil.which(tool) is None:
            die(f"{tool} not found: install poppler-utils")

    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        seeds, texts = collect_seeds(args, scratch)
    mutator = Mutator(rng, seeds, texts)
    width = max(4, len(str(max(args.count, args.good))))
    files = []

    def write(prefix, i, data, ext, **info):
        name = f"{prefix}-{i:0{width}d}" + (f".{ext}" if ext else "")
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(data)
        files.append(dict(name=name, bytes=len(data), **info))

    order = []
    for i in range(args.count):
        if not order:
            order = KINDS[:]
            rng.shuffle(order)
        kind = order.pop()
        data, ext, seed, detail = getattr(mutator, kind)()
        write("hostile", i + 1, data, ext, kind=kind, seed=seed, detail=detail)

    good_seeds = [s for s in seeds if s.good and good_copy(s, 0) is not None]
    rng.shuffle(good_seeds)
    for i in range(args.good):
        seed = good_seeds[i % len(good_seeds)]
        write("good", i + 1, good_copy(seed, i + 1), seed.ext, kind="good", seed=seed.name, detail="unmodified")

    kinds = {}
    for f in files:
        kinds[f["kind"]] = kinds.get(f["kind"], 0) + 1
    seed_types = {}
    for s in seeds:
        seed_types[s.ext] = seed_types.get(s.ext, 0) + 1
    manifest = os.path.join(args.out, ".manifest.json")
    summary = {
        "out": args.out,
        "seed": args.seed,
        "hostile": args.count,
        "good": args.good,
        "kinds": kinds,
        "seeds": seed_types,
        "bytes": sum(f["bytes"] for f in files),
        "manifest": manifest,
    }
    with open(manifest, "w") as f:
        json.dump(dict(summary, files=files), f, indent=1)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
