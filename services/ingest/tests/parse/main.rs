//! Parsing and chunking real documents: the development PDFs (fetched by
//! `scripts/fetch-dev-qa.sh`) with both PDF backends, checked against the page and quote of
//! each question in `tests/data/dev-qa/qa.jsonl`; chunker properties with the real
//! embedding model's tokenizer; and hostile files, which fail their own document with a
//! reason or are read, never the process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lectern_core::{DocumentParser, ParsedDocument};
use lectern_ingest::chunk::{Chunker, ChunkerConfig};
use lectern_ingest::parse::{MediaType, Parsers, detect_media_type};
use proptest::prelude::*;

fn cache() -> PathBuf {
    lectern_core::default_cache_dir()
}

fn dev_qa_pdf(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("LECTERN_DEV_QA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("dev-qa"));
    std::fs::read(dir.join(name))
        .unwrap_or_else(|e| panic!("{name}: {e} (run scripts/fetch-dev-qa.sh)"))
}

fn pdfium_parsers() -> Parsers {
    let lib = std::env::var_os("LECTERN_PDFIUM_LIB")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("assets/pdfium/libpdfium.so"));
    assert!(
        lib.is_file(),
        "{} missing (run scripts/fetch-assets.sh pdfium)",
        lib.display()
    );
    Parsers {
        pdfium: Some(lib),
        ..Parsers::default()
    }
}

/// The dev set's matching rules: NFKC, curly quotes and dashes folded, whitespace
/// collapsed, lower case; a word hyphenated across a line end accepted joined.
fn fold(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let s: String = s
        .nfkc()
        .map(|c| match c {
            '\u{2018}' | '\u{2019}' => '\'',
            '\u{201C}' | '\u{201D}' => '"',
            '\u{2010}'..='\u{2015}' => '-',
            c => c,
        })
        .collect();
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

fn contains_quote(page: &str, quote: &str) -> bool {
    let (page, quote) = (fold(page), fold(quote));
    page.contains(&quote)
        || page.replace("- ", "").contains(&quote.replace("- ", ""))
        || page.replace("- ", "").contains(&quote)
}

fn page_text(doc: &ParsedDocument, page: usize) -> String {
    let chars: Vec<char> = doc.text.chars().collect();
    let start = doc.page_starts[page - 1];
    let end = doc.page_starts.get(page).copied().unwrap_or(chars.len());
    chars[start..end].iter().collect()
}

struct Question {
    doc: String,
    page: usize,
    quote: String,
}

fn questions() -> Vec<Question> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/dev-qa/qa.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Some(Question {
                doc: v["doc"].as_str()?.to_owned(),
                page: v["pages"][0].as_u64()? as usize,
                quote: v["quote"].as_str()?.to_owned(),
            })
        })
        .collect()
}

#[test]
fn the_dev_set_ships_with_the_repository() {
    // A clone has the questions without any folder beside it; only the PDFs are fetched.
    let questions = questions();
    let per_doc = |doc: &str| questions.iter().filter(|q| q.doc == doc).count();
    assert_eq!(
        [
            per_doc("gnuplot.pdf"),
            per_doc("sample-sigconf.pdf"),
            per_doc("auguide4-2.pdf")
        ],
        [10, 7, 8],
        "answerable questions per document"
    );
}

/// Share of the dev questions about `docs` whose quote is on the stated page.
fn quote_recall(parsers: &Parsers, docs: &[&str], pages: &[usize]) -> f64 {
    let mut found = 0;
    let mut total = 0;
    for (doc, expected_pages) in docs.iter().zip(pages) {
        let bytes = dev_qa_pdf(doc);
        assert_eq!(detect_media_type(&bytes, doc).unwrap(), MediaType::Pdf);
        let parsed = parsers.parse(&bytes, MediaType::Pdf.mime()).unwrap();
        assert_eq!(parsed.page_count(), *expected_pages, "{doc}");
        for q in questions().iter().filter(|q| q.doc == *doc) {
            total += 1;
            if contains_quote(&page_text(&parsed, q.page), &q.quote) {
                found += 1;
            } else {
                eprintln!("{doc} p.{}: not found: {}", q.page, q.quote);
            }
        }
    }
    assert!(total > 0);
    found as f64 / total as f64
}

#[test]
fn pdfium_reads_a_long_manual_and_two_column_papers_page_by_page() {
    let recall = quote_recall(
        &pdfium_parsers(),
        &["gnuplot.pdf", "sample-sigconf.pdf", "auguide4-2.pdf"],
        &[311, 6, 19],
    );
    assert!(
        recall >= 0.9,
        "PDFium found only {:.0}% of the quotes on their pages",
        recall * 100.0
    );
}

#[test]
fn pdf_extract_reads_two_column_papers_page_by_page() {
    let recall = quote_recall(
        &Parsers::default(),
        &["sample-sigconf.pdf", "auguide4-2.pdf"],
        &[6, 19],
    );
    assert!(
        recall >= 0.6,
        "pdf-extract found only {:.0}% of the quotes on their pages",
        recall * 100.0
    );
}

fn chunker() -> &'static Chunker {
    static CHUNKER: OnceLock<Chunker> = OnceLock::new();
    CHUNKER.get_or_init(|| {
        let path = lectern_embed::testing::default_options()
            .model_dir
            .join("tokenizer.json");
        Chunker::from_tokenizer_file(
            &path,
            ChunkerConfig {
                max_tokens: 64,
                overlap_tokens: 8,
                context_prefix: true,
            },
        )
        .unwrap()
    })
}

/// Spans lie in the text, in order; each chunk is its span's text; its pages are those of
/// its span; no chunk is over budget; every word of the text is in some chunk.
fn check_chunks(doc: &ParsedDocument, markdown: bool) {
    let chunks = chunker().chunk(doc, markdown);
    let chars: Vec<char> = doc.text.chars().collect();
    let mut covered = vec![false; chars.len()];
    for (i, c) in chunks.iter().enumerate() {
        assert_eq!(c.index as usize, i);
        assert!(c.span.start < c.span.end && c.span.end <= chars.len());
        assert_eq!(
            chars[c.span.start..c.span.end].iter().collect::<String>(),
            c.text
        );
        assert!(
            c.token_count <= chunker().config().max_tokens,
            "chunk {i} has {} tokens",
            c.token_count
        );
        assert_eq!(c.pages.start, doc.page_at(c.span.start));
        assert_eq!(c.pages.end, doc.page_at(c.span.end - 1));
        if i > 0 {
            assert!(
                c.span.start > chunks[i - 1].span.start,
                "chunks out of order"
            );
        }
        covered[c.span.start..c.span.end]
            .iter_mut()
            .for_each(|x| *x = true);
    }
    let missed: String = chars
        .iter()
        .zip(&covered)
        .filter(|(ch, cov)| !**cov && !ch.is_whitespace())
        .map(|(c, _)| *c)
        .collect();
    assert!(missed.is_empty(), "text not in any chunk: {missed:?}");
    assert_eq!(
        chunks,
        chunker().chunk(doc, markdown),
        "chunking is deterministic"
    );
}

#[test]
fn chunks_of_a_real_manual_keep_pages_and_spans() {
    let doc = pdfium_parsers()
        .parse(&dev_qa_pdf("sample-sigconf.pdf"), MediaType::Pdf.mime())
        .unwrap();
    check_chunks(&doc, false);
    let chunks = chunker().chunk(&doc, false);
    assert!(
        chunks.iter().any(|c| c.pages.start == 6),
        "the last page is chunked too"
    );
}

/// A table in a real PDF (the ACM sample paper's Table 1, "Frequency of Special
/// Characters") keeps its rows: each row's cells on one line between bars, under its
/// header row and the rule.
#[test]
fn a_real_pdf_table_keeps_its_rows_under_its_header() {
    let doc = pdfium_parsers()
        .parse(&dev_qa_pdf("sample-sigconf.pdf"), MediaType::Pdf.mime())
        .unwrap();
    let rows: Vec<&str> = doc
        .text
        .lines()
        .filter(|l| l.trim_start().starts_with('|'))
        .collect();
    let header = rows
        .iter()
        .position(|r| r.contains("Frequency") && r.contains("Comments"))
        .unwrap_or_else(|| panic!("no header row among {rows:#?}"));
    assert!(rows[header + 1].contains("---"), "{rows:#?}");
    for (frequency, comment) in [
        ("1 in 1,000", "For Swedish names"),
        ("1 in 5", "Common in math"),
    ] {
        assert!(
            rows[header + 2..]
                .iter()
                .any(|r| r.contains(frequency) && r.contains(comment)),
            "{frequency} and {comment} on one row: {rows:#?}"
        );
    }
}

fn arb_document() -> impl Strategy<Value = (ParsedDocument, bool)> {
    let word = prop::sample::select(vec![
        "policy",
        "leave",
        "Überstunden",
        "naïve",
        "ﬁle",
        "a",
        "the",
        "QX-7741",
        "日本語",
        "e.g.",
        "cost:",
        "12,5%",
    ]);
    let sentence = prop::collection::vec(word, 1..25).prop_map(|w| format!("{}.", w.join(" ")));
    let paragraph = prop::collection::vec(sentence, 1..6).prop_map(|s| s.join(" "));
    let heading = prop::sample::select(vec!["", "# Title\n\n", "## Section\n\n"]);
    let block = (heading, paragraph).prop_map(|(h, p)| format!("{h}{p}"));
    (
        prop::collection::vec(block, 1..12),
        any::<bool>(),
        prop::collection::vec(any::<bool>(), 12),
    )
        .prop_map(|(blocks, markdown, breaks)| {
            let mut text = String::new();
            let mut page_starts = vec![0];
            for (i, b) in blocks.iter().enumerate() {
                if i > 0 {
                    text.push_str("\n\n");
                    if breaks[i] {
                        page_starts.push(text.chars().count());
                    }
                }
                text.push_str(b);
            }
            let doc = if markdown {
                lectern_ingest::parse::parse_markdown(&text)
            } else {
                ParsedDocument {
                    title: None,
                    text,
                    page_starts,
                    ..ParsedDocument::default()
                }
            };
            (doc, markdown)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
    #[test]
    fn chunking_properties_hold((doc, markdown) in arb_document()) {
        check_chunks(&doc, markdown);
    }
}

fn hard_pdf(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("LECTERN_TEST_DOCS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache().join("test-docs"));
    std::fs::read(dir.join(name))
        .unwrap_or_else(|e| panic!("{name}: {e} (run scripts/fetch-test-docs.sh)"))
}

/// Real hard files from pypdf's and ocrmypdf's test suites, through both backends: each
/// either reads or fails with the reason a user can act on, and never panics or hangs.
#[test]
fn hard_pdfs_fail_with_reasons_or_are_read() {
    use lectern_core::ParseError;
    let pdf = MediaType::Pdf.mime();
    for (name, parsers) in [
        ("PDFium", pdfium_parsers()),
        ("pdf-extract", Parsers::default()),
    ] {
        // Only an owner password, or an empty user password: readable without asking.
        for file in ["r4-owner-password.pdf", "r6-empty-password.pdf"] {
            let doc = parsers.parse(&hard_pdf(file), pdf);
            let doc = doc.unwrap_or_else(|e| panic!("{name} {file}: {e}"));
            assert!(
                fold(&doc.text).contains("pdf encryption test"),
                "{name} {file}: {:?}",
                doc.text
            );
        }
        assert_eq!(
            parsers.parse(&hard_pdf("libreoffice-writer-password.pdf"), pdf),
            Err(ParseError::Encrypted),
            "{name}: a user password is needed"
        );
        // Without OCR a scan has no text, and the reason says why.
        let why = if name == "PDFium" {
            "OCR is off"
        } else {
            "OCR needs PDFium"
        };
        for scanned in ["skew.pdf", "c03-29.pdf", "linn.pdf"] {
            let outcome = parsers.parse(&hard_pdf(scanned), pdf);
            assert!(
                matches!(&outcome, Err(ParseError::NoText(reason)) if reason.contains(why)),
                "{name} {scanned}: {outcome:?}"
            );
        }
        let invalid = parsers.parse(&hard_pdf("invalid.pdf"), pdf);
        assert!(
            matches!(invalid, Err(ParseError::Malformed(_))),
            "{name}: {invalid:?}"
        );
        assert!(
            parsers.parse(&hard_pdf("crazyones.pdf"), pdf).is_ok(),
            "{name}: a plain PDF still reads"
        );
    }
    let reason = ParseError::NoText("the document looks scanned, and OCR is off".into());
    assert_eq!(
        reason.to_string(),
        "no extractable text: the document looks scanned, and OCR is off"
    );
}

/// PDFium with OCR in English, as the server reads PDFs by default.
fn ocr_parsers() -> Parsers {
    Parsers {
        ocr: Some(lectern_ingest::parse::Ocr::default()),
        ..pdfium_parsers()
    }
}

/// ocrmypdf's scans (no text layer) are read by OCR: upright, skewed, and turned by a
/// quarter, a half and three quarters (cardinal.pdf's four pages), with every page
/// listed as read by OCR; a page with a text layer is never OCR'd.
#[test]
fn scanned_pages_are_read_by_ocr_and_listed() {
    let parsers = ocr_parsers();
    let pdf = MediaType::Pdf.mime();
    for scan in ["linn.pdf", "skew.pdf", "cardinal.pdf"] {
        let doc = parsers
            .parse(&hard_pdf(scan), pdf)
            .unwrap_or_else(|e| panic!("{scan}: {e}"));
        let pages = doc.page_count() as u32;
        assert_eq!(doc.ocr_pages, (1..=pages).collect::<Vec<_>>(), "{scan}");
        assert!(doc.empty_pages.is_empty(), "{scan}: {:?}", doc.empty_pages);
        for page in 1..=pages {
            let text = fold(&page_text(&doc, page as usize));
            for words in [
                "linnsequencer",
                "state-of-the-art composition and performance tool",
                "multi-track tape recorder",
            ] {
                assert!(
                    text.contains(words),
                    "{scan} page {page} lacks {words:?}: {text:?}"
                );
            }
        }
        assert!(
            doc.notice().unwrap().contains("read by OCR"),
            "{scan}: {:?}",
            doc.notice()
        );
    }
    // A PDF with a text layer: read from it, nothing OCR'd, nothing to say.
    let text_pdf = parsers.parse(&hard_pdf("crazyones.pdf"), pdf).unwrap();
    assert!(text_pdf.ocr_pages.is_empty());
    assert_eq!(text_pdf.notice(), None);
}

/// A mixed PDF (ocrmypdf's multipage.pdf: scans, a chart with a text layer, pictures):
/// every page ends with text, or is listed as empty with the others in the notice;
/// nothing is dropped silently.
#[test]
fn a_mixed_pdf_accounts_for_every_page() {
    let doc = ocr_parsers()
        .parse(&hard_pdf("multipage.pdf"), MediaType::Pdf.mime())
        .unwrap();
    assert_eq!(doc.page_count(), 6);
    assert!(doc.ocr_pages.contains(&1), "{:?}", doc.ocr_pages);
    assert!(
        fold(&doc.text).contains("miss watson"),
        "the scanned first page is read"
    );
    for page in 1..=6u32 {
        let text = page_text(&doc, page as usize);
        let has_text = text.chars().any(char::is_alphanumeric);
        assert_eq!(
            has_text,
            !doc.empty_pages.contains(&page),
            "page {page} is listed as empty exactly when it has no text: {text:?}"
        );
    }
    let notice = doc.notice().unwrap();
    assert!(notice.contains("read by OCR"), "{notice}");
}

/// PDFium with OCR on, but its program missing.
fn parsers_without_tesseract() -> Parsers {
    Parsers {
        ocr: Some(lectern_ingest::parse::Ocr {
            tesseract: "/nonexistent/tesseract".into(),
            ..Default::default()
        }),
        ..pdfium_parsers()
    }
}

/// Without Tesseract, a scan fails with a reason that says so, and a text PDF still reads.
#[test]
fn a_missing_ocr_program_is_named_in_the_reason() {
    let parsers = parsers_without_tesseract();
    let outcome = parsers.parse(&hard_pdf("linn.pdf"), MediaType::Pdf.mime());
    assert!(
        matches!(&outcome, Err(lectern_core::ParseError::NoText(why)) if why.contains("Tesseract, which is not installed")),
        "{outcome:?}"
    );
    assert!(
        parsers
            .parse(&hard_pdf("crazyones.pdf"), MediaType::Pdf.mime())
            .is_ok()
    );
}

/// A page that draws nothing is not sent to OCR: a hostile PDF holds 20,000 of them, and
/// each would be rendered and recognised. Here OCR's program is missing, so a blank page
/// sent to it would leave that reason on the document; none is left, and the page of text
/// still reads.
#[test]
fn blank_pages_are_not_sent_to_ocr() {
    use lectern_pdfium::testing::{Page, Placed, pdf};
    let parsers = parsers_without_tesseract();
    let mut pages: Vec<Page> = (0..3).map(|_| Page::letter(Vec::new())).collect();
    pages.push(Page::letter(vec![Placed::new(
        72.0,
        700.0,
        "Claims are paid with the next salary.",
    )]));
    let doc = parsers.parse(&pdf(&pages), MediaType::Pdf.mime()).unwrap();
    assert_eq!(doc.empty_pages, vec![1, 2, 3]);
    assert_eq!(doc.empty_reason, None, "no blank page went to OCR");
    assert!(doc.ocr_pages.is_empty());
    assert!(fold(&doc.text).contains("claims are paid"), "{}", doc.text);
}

/// A zip bomb gives itself away by how far it unpacks per byte it holds: it is refused from
/// the archive's directory, before anything is unpacked. (32 MB here packs to tens of KB; a
/// real bomb's gigabytes pack the same way.)
#[test]
fn a_docx_zip_bomb_is_refused_before_it_is_unpacked() {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    zip.start_file(
        "word/document.xml",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    zip.write_all(br#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>"#)
        .unwrap();
    // Written a megabyte at a time, so the test never holds the unpacked text.
    let paragraph = "<w:p><w:r><w:t>All work and no play.</w:t></w:r></w:p>";
    let megabyte = paragraph.repeat((1 << 20) / paragraph.len());
    for _ in 0..32 {
        zip.write_all(megabyte.as_bytes()).unwrap();
    }
    zip.write_all(b"</w:body></w:document>").unwrap();
    zip.finish().unwrap();
    let bytes = buf.into_inner();

    let started = std::time::Instant::now();
    let refused = Parsers::default().parse(&bytes, MediaType::Docx.mime());
    assert_eq!(
        refused,
        Err(lectern_core::ParseError::TooLarge(
            "the DOCX unpacks to over 100 times its size; it looks like a zip bomb".into()
        )),
        "{} KB packed",
        bytes.len() >> 10
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "refused without unpacking, not after: {:?}",
        started.elapsed()
    );
}

/// Tags nested 100,000 deep, read on a thread with the 2 MiB stack of tokio's blocking
/// threads (where ingest parses): a walk that recursed per level would overflow it and
/// abort the whole process.
#[test]
fn html_nested_100000_deep_is_read_on_a_small_stack() {
    // At each `<div>` the HTML parser searches its whole stack of open elements for a `<p>`
    // to close: 100,000 of them took quadratic time, minutes, until elements nested past
    // 512 were read without their tags (`html::flatten`).
    for tag in ["span", "div"] {
        let page = format!(
            "<p>Top.</p>{}Deep down.",
            format!("<{tag}>").repeat(100_000)
        );
        let parsed = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || Parsers::default().parse(page.as_bytes(), MediaType::Html.mime()))
            .unwrap()
            .join()
            .expect("the parser thread finished");
        assert_eq!(parsed.unwrap().text, "Top.\n\nDeep down.", "{tag}");
    }
}

/// A real Word document's tables (python-docx's test file, written by Word, with cells
/// merged across columns and rows) become Markdown tables whose rows keep their columns.
#[test]
fn a_word_documents_tables_keep_rows_and_columns() {
    let doc = Parsers::default()
        .parse(&hard_pdf("tbl-cell-access.docx"), MediaType::Docx.mime())
        .unwrap();
    assert!(
        doc.text
            .starts_with("| 1 | 2 | 3 |\n| --- | --- | --- |\n| 4 | 5 | 6 |\n| 7 | 8 | 9 |\n\n"),
        "{}",
        doc.text
    );
    let rows: Vec<&str> = doc.text.lines().filter(|l| l.starts_with('|')).collect();
    // Four tables of three rows, each with its rule.
    assert_eq!(rows.len(), 16, "{}", doc.text);
    for row in rows {
        assert_eq!(row.matches(" |").count(), 3, "three columns in {row:?}");
    }
    check_chunks(&doc, false);
}

/// A long table keeps each row whole on one line, and a chunk that starts below the
/// table's header carries that header to the embedder.
#[test]
fn table_rows_survive_into_chunks_with_their_header() {
    let rows: Vec<(String, String)> = (1..=40)
        .map(|i| (format!("Grade {i}"), format!("{} EUR per day", 100 + 7 * i)))
        .collect();
    let page = format!(
        "<h1>Travel rates</h1><p>The daily rates by grade.</p><table><tr><th>Grade</th><th>Daily rate</th></tr>{}</table><p>Rates change each April.</p>",
        rows.iter()
            .map(|(g, r)| format!("<tr><td>{g}</td><td>{r}</td></tr>"))
            .collect::<String>()
    );
    let doc = Parsers::default()
        .parse(page.as_bytes(), MediaType::Html.mime())
        .unwrap();
    check_chunks(&doc, false);
    let chunks = chunker().chunk(&doc, false);
    for (grade, rate) in &rows {
        let line = format!("| {grade} | {rate} |");
        assert!(
            chunks.iter().any(|c| c.text.lines().any(|l| l == line)),
            "no chunk holds the row {line:?} whole"
        );
    }
    let header = "| Grade | Daily rate |\n| --- | --- |";
    let below: Vec<_> = chunks
        .iter()
        .filter(|c| c.text.starts_with("| Grade ") && !c.text.starts_with("| Grade |"))
        .collect();
    assert!(
        below.len() >= 2,
        "the table spans several chunks: {chunks:#?}"
    );
    for c in &below {
        assert_eq!(c.table_header.as_deref(), Some(header), "{c:#?}");
        assert!(
            chunker()
                .embedding_text("Rates", c)
                .text
                .starts_with(header)
        );
    }
    assert!(
        chunks
            .iter()
            .filter(|c| !c.text.starts_with('|'))
            .all(|c| c.table_header.is_none()),
        "only chunks that start in the table carry its header"
    );
}

/// A PDF of three pages, drawn piece by piece as a PDF writer does: a table of 30 rates
/// below a heading; prose in two columns, drawn line by line across both columns; prose
/// followed by a numbered and a bulleted list, the markers set apart from the items.
fn rates_pdf() -> Vec<u8> {
    use lectern_pdfium::testing::{Page, Placed, pdf};
    let mut rates = vec![
        Placed {
            size: 14.0,
            ..Placed::new(72.0, 740.0, "Travel rates")
        },
        Placed::new(72.0, 716.0, "The daily rates by grade."),
    ];
    let mut y = 690.0;
    for (grade, rate, receipts) in rate_rows() {
        rates.extend([
            Placed::new(72.0, y, grade),
            Placed::new(200.0, y, rate),
            Placed::new(320.0, y, receipts),
        ]);
        y -= 14.0;
    }
    rates.push(Placed::new(72.0, y - 12.0, "Rates change each April."));

    let left = [
        "Travel within the country is booked through",
        "the office, which holds the contracts with",
        "the rail and air carriers. Staff who book",
        "privately are reimbursed at the rate of the",
        "cheapest fare that was available on the day",
        "of booking, and receipts must be kept for",
        "six years. Claims are paid with the next",
        "salary after approval by the line manager.",
    ];
    let right = [
        "Meals are reimbursed up to the daily",
        "allowance for the city of travel; alcohol is",
        "not reimbursed. Travel within the country is",
        "booked through the office, which holds the",
        "contracts with the rail and air carriers.",
        "Staff who book privately are reimbursed at",
        "the rate of the cheapest fare that was",
        "available on the day of booking, and",
    ];
    let mut columns = Vec::new();
    for (i, (l, r)) in left.into_iter().zip(right).enumerate() {
        let y = 740.0 - 12.0 * i as f32;
        columns.extend([Placed::new(72.0, y, l), Placed::new(320.0, y, r)]);
    }

    let mut lists: Vec<Placed> = [
        "Travel within the country is booked through the office, which holds the contracts with the rail",
        "and air carriers. Staff who book privately are reimbursed at the rate of the cheapest fare that",
        "was available on the day of booking, and receipts must be kept for six years. Claims are paid",
        "with the next salary after approval by the line manager.",
    ]
    .into_iter()
    .enumerate()
    .map(|(i, line)| Placed::new(72.0, 740.0 - 12.0 * i as f32, line))
    .collect();
    let items = [
        ("1.", "Apples"),
        ("2.", "Pears"),
        ("3.", "Plums"),
        ("•", "Rail"),
        ("•", "Air"),
        ("•", "Taxi"),
    ];
    for (i, (marker, item)) in items.into_iter().enumerate() {
        let y = 686.0 - 12.0 * i as f32 - if i >= 3 { 6.0 } else { 0.0 };
        lists.extend([Placed::new(80.0, y, marker), Placed::new(100.0, y, item)]);
    }
    pdf(&[
        Page::letter(rates),
        Page::letter(columns),
        Page::letter(lists),
    ])
}

/// The rate table's rows, its header first.
fn rate_rows() -> Vec<(String, String, String)> {
    let mut rows = vec![(
        "Grade".to_owned(),
        "Daily rate".to_owned(),
        "Receipts".to_owned(),
    )];
    rows.extend((1..=30).map(|i| {
        let receipts = if i % 3 == 0 { "no" } else { "yes" };
        (
            format!("Grade {i}"),
            format!("{} EUR", 100 + 7 * i),
            receipts.to_owned(),
        )
    }));
    rows
}

/// PDFium's own text of each page, as the parser kept it before tables were laid out.
fn pdfium_page_texts(bytes: &[u8]) -> Vec<String> {
    let lib = pdfium_parsers().pdfium.unwrap();
    let pdfium = lectern_pdfium::pdfium(&lib).unwrap();
    let document = pdfium.load_pdf_from_byte_slice(bytes, None).unwrap();
    document
        .pages()
        .iter()
        .map(|page| {
            let text = page.text().unwrap().all();
            lectern_core::normalise(&lectern_core::attach_graves(text.trim_end()))
        })
        .collect()
}

/// A table in a PDF, found from PDFium's character boxes, becomes Markdown table rows with
/// its header first, each row whole on one line; prose, two-column prose and lists on the
/// other pages read exactly as PDFium reads them.
#[test]
fn a_pdf_tables_rows_become_markdown_rows_and_other_pages_stay_as_they_were() {
    let bytes = rates_pdf();
    let doc = pdfium_parsers()
        .parse(&bytes, MediaType::Pdf.mime())
        .unwrap();
    assert_eq!(doc.page_count(), 3);
    let rows: Vec<String> = rate_rows()
        .iter()
        .map(|(grade, rate, receipts)| format!("| {grade} | {rate} | {receipts} |"))
        .collect();
    let expected = format!(
        "Travel rates\nThe daily rates by grade.\n\n{}\n| --- | --- | --- |\n{}\n\nRates change each April.",
        rows[0],
        rows[1..].join("\n")
    );
    assert_eq!(page_text(&doc, 1).trim_end(), expected);

    let pdfium = pdfium_page_texts(&bytes);
    for page in [2, 3] {
        let text = page_text(&doc, page);
        assert_eq!(text.trim_end(), pdfium[page - 1].trim_end(), "page {page}");
        assert!(!text.contains('|'), "page {page} has no table: {text}");
    }
    assert!(
        page_text(&doc, 2).contains("Travel within the country is booked through Meals are"),
        "the two columns still read across, as PDFium reads them"
    );
    assert!(page_text(&doc, 3).contains("1. Apples\n2. Pears\n3. Plums\n• Rail\n"));
}

/// The PDF table's rows keep whole in chunks, and a chunk that starts below the header
/// carries it to the embedder, as a DOCX or HTML table's does.
#[test]
fn a_pdf_tables_rows_survive_into_chunks_with_their_header() {
    let doc = pdfium_parsers()
        .parse(&rates_pdf(), MediaType::Pdf.mime())
        .unwrap();
    check_chunks(&doc, false);
    let chunks = chunker().chunk(&doc, false);
    for (grade, rate, receipts) in &rate_rows()[1..] {
        let line = format!("| {grade} | {rate} | {receipts} |");
        assert!(
            chunks.iter().any(|c| c.text.lines().any(|l| l == line)),
            "no chunk holds the row {line:?} whole"
        );
    }
    let header = "| Grade | Daily rate | Receipts |\n| --- | --- | --- |";
    let below: Vec<_> = chunks
        .iter()
        .filter(|c| c.text.starts_with("| Grade ") && !c.text.starts_with("| Grade |"))
        .collect();
    assert!(
        below.len() >= 2,
        "the table spans several chunks: {chunks:#?}"
    );
    for c in &below {
        assert_eq!(c.table_header.as_deref(), Some(header), "{c:#?}");
        assert_eq!(c.pages.start, 1);
    }
    assert!(
        chunks
            .iter()
            .filter(|c| !c.text.starts_with('|'))
            .all(|c| c.table_header.is_none()),
        "only chunks that start in the table carry its header"
    );
}

/// The ingest service's binary, built beside this test (target/<profile>/lectern-ingest).
fn ingest_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let bin = profile_dir.join(format!("lectern-ingest{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.is_file(),
        "{} missing (cargo test builds it)",
        bin.display()
    );
    bin
}

/// The ingest binary as the parse worker (the server runs its own executable so).
fn isolated(memory_mb: u64) -> Parsers {
    Parsers {
        isolation: Some(lectern_ingest::parse::Isolation {
            program: ingest_binary(),
            memory_mb,
        }),
        ..pdfium_parsers()
    }
}

/// A worker process reads a stored file exactly as the server would itself, and says why
/// a file cannot be read in the same words; a file that needs more memory than a worker
/// may use fails with that reason, and the next worker reads normally.
#[tokio::test]
async fn a_worker_process_reads_files_as_the_server_would_within_its_limits() {
    use lectern_core::ParseError;
    let dir = tempfile::tempdir().unwrap();
    let pdf = MediaType::Pdf.mime();
    let files = [
        ("manual.pdf", dev_qa_pdf("gnuplot.pdf"), pdf),
        (
            "locked.pdf",
            hard_pdf("libreoffice-writer-password.pdf"),
            pdf,
        ),
        (
            "notes.md",
            b"# Notes\n\nTrains are second class under four hours.\n".to_vec(),
            MediaType::Markdown.mime(),
        ),
    ];
    let here = pdfium_parsers();
    let worker = isolated(2048);
    for (name, bytes, media) in &files {
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let read = worker.parse_file(&path, media).await.expect("a worker ran");
        assert_eq!(read, here.parse(bytes, media), "{name}");
    }
    assert_eq!(
        worker
            .parse_file(&dir.path().join("locked.pdf"), pdf)
            .await
            .unwrap(),
        Err(ParseError::Encrypted)
    );

    let manual = dir.path().join("manual.pdf");
    let starved = isolated(STARVED_MB).parse_file(&manual, pdf).await.unwrap();
    let reason = match starved {
        Ok(doc) => panic!("read {} pages in {STARVED_MB} MB", doc.page_count()),
        Err(e) => e.to_string(),
    };
    assert!(
        reason.contains(&format!("{STARVED_MB} MB of memory")),
        "{reason}"
    );
    let again = worker.parse_file(&manual, pdf).await.unwrap().unwrap();
    assert!(again.page_count() > 300);

    // The stored file missing is not the file's fault: no verdict on it (the job retries).
    assert!(
        worker
            .parse_file(&dir.path().join("gone.pdf"), pdf)
            .await
            .is_err()
    );
}

/// Enough for the worker to start, too little for PDFium to read a 300-page manual (it needs
/// about 30 MB).
const STARVED_MB: u64 = 8;

/// A PDF's outline gives its chunks their sections, as headings give an HTML page's: each
/// entry is placed where its page shows its title as a heading (a line of its own), not
/// where running text mentions it, and the chunks under it are embedded with it.
#[test]
fn a_pdf_outline_becomes_the_headings_where_its_pages_show_them() {
    let doc = pdfium_parsers()
        .parse(&dev_qa_pdf("gnuplot.pdf"), MediaType::Pdf.mime())
        .unwrap();
    // The manual's outline has 648 entries; (nearly) all are found on their pages.
    assert!(doc.headings.len() > 600, "{} headings", doc.headings.len());
    assert!(doc.headings.is_sorted_by_key(|h| h.offset));
    let chars: Vec<char> = doc.text.chars().collect();
    let at = |offset: usize| -> String { chars[offset..offset + 40].iter().collect() };
    let heading = |title: &str| {
        doc.headings
            .iter()
            .find(|h| h.text == title)
            .unwrap_or_else(|| panic!("no heading {title}"))
    };
    let separator = heading("Set datafile separator");
    assert_eq!(doc.page_at(separator.offset), 144);
    assert!(at(separator.offset).starts_with("Set datafile separator\n"));
    // "Data" is first mentioned on its page in a line that begins "data file. In cases
    // where...": the heading is the line that holds the title alone.
    let data = heading("Data");
    assert_eq!(doc.page_at(data.offset), 107);
    assert!(
        at(data.offset).starts_with("Data\nDiscrete data"),
        "{:?}",
        at(data.offset)
    );
    // Levels follow the outline's depth (1 for its top level, plus one).
    assert_eq!((data.level, separator.level), (4, 5));

    let chunks = chunker().chunk(&doc, false);
    let next = heading("Set datafile commentschars").offset;
    let under = chunks
        .iter()
        .find(|c| (separator.offset + 1..next).contains(&c.span.start))
        .expect("a chunk starts between the heading and the next");
    assert_eq!(under.heading.as_deref(), Some("Set datafile separator"));
    assert_eq!(
        chunker().embedding_text("gnuplot", under).context,
        "gnuplot — Set datafile separator"
    );
}
