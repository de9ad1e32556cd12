use std::path::Path;
use std::time::Duration;

use lectern_core::{ParseError, ParsedDocument};
use lectern_pdfium::ocr::{self, Ocr, OcrError};
use pdfium_render::prelude::*;

use super::normalise;
use super::pdf_tables::{CharBox, PageChar, lay_out_tables, page_chars};

/// Joins page texts, recording where each page starts. Pages are separated by a blank
/// line so that no word runs across a page break. Pages without a letter or digit are
/// listed as empty.
fn from_pages(title: Option<String>, pages: impl IntoIterator<Item = String>) -> ParsedDocument {
    let mut text = String::new();
    let mut chars = 0;
    let mut page_starts = Vec::new();
    let mut empty_pages = Vec::new();
    for page in pages {
        if !page_starts.is_empty() {
            text.push_str("\n\n");
            chars += 2;
        }
        page_starts.push(chars);
        if ocr::alphanumerics(&page) == 0 {
            empty_pages.push(page_starts.len() as u32);
        }
        let page = normalise(page.trim_end());
        chars += page.chars().count();
        text.push_str(&page);
    }
    ParsedDocument {
        title,
        text,
        page_starts,
        empty_pages,
        ..ParsedDocument::default()
    }
}

/// PDFium, bound once per process (the web app renders pages with the same binding).
pub fn pdfium(library: &Path) -> Result<&'static Pdfium, ParseError> {
    lectern_pdfium::pdfium(library).map_err(ParseError::Unsupported)
}

/// PDFium: text page by page, in the order the file draws it (two columns stay apart); a
/// page with a table has its rows as Markdown table rows (see `pdf_tables.rs`). A page
/// without a text layer is read by OCR when `ocr` is set.
pub fn parse_with_pdfium(
    library: &Path,
    bytes: &[u8],
    ocr: Option<&Ocr>,
) -> Result<ParsedDocument, ParseError> {
    let pdfium = pdfium(library)?;
    let document = pdfium
        .load_pdf_from_byte_slice(bytes, None)
        .map_err(|e| match e {
            PdfiumError::PdfiumLibraryInternalError(PdfiumInternalError::PasswordError) => {
                ParseError::Encrypted
            }
            PdfiumError::PdfiumLibraryInternalError(PdfiumInternalError::FormatError) => {
                ParseError::Malformed("not a readable PDF".into())
            }
            other => ParseError::Malformed(other.to_string()),
        })?;
    let title = document
        .metadata()
        .get(PdfDocumentMetadataTagType::Title)
        .map(|t| t.value().trim().to_owned())
        .filter(|t| !t.is_empty());
    let mut reader = PageReader {
        ocr,
        trouble: ocr.is_none().then(|| "OCR is off".to_owned()),
        ocr_pages: Vec::new(),
    };
    let mut pages = Vec::new();
    for page in document.pages().iter() {
        let number = pages.len() as u32 + 1;
        let text = page
            .text()
            .map_err(|e| ParseError::Malformed(format!("page {number}: {e}")))?;
        let layer = match lay_out_tables(&read_chars(&text)) {
            Some(laid) => {
                debug_assert!(laid.sources.iter().flatten().is_sorted());
                laid.text
            }
            None => text.all(),
        };
        pages.push(reader.read(&page, number, layer));
    }
    if pages.is_empty() {
        return Err(ParseError::Malformed("the PDF has no pages".into()));
    }
    let mut doc = from_pages(title, pages);
    doc.ocr_pages = reader.ocr_pages;
    if !doc.empty_pages.is_empty() {
        doc.empty_reason = reader.trouble;
    }
    Ok(doc)
}

/// Reads the pages of one PDF: each page's text layer, or its OCR where the layer is too
/// thin to be the page's text.
struct PageReader<'a> {
    /// `None` once OCR is off or found missing.
    ocr: Option<&'a Ocr>,
    /// Why a page could not be read by OCR (the first reason).
    trouble: Option<String>,
    ocr_pages: Vec<u32>,
}

impl PageReader<'_> {
    fn read(&mut self, page: &PdfPage, number: u32, layer: String) -> String {
        if !ocr::needs_ocr(&layer) {
            return layer;
        }
        let Some(settings) = self.ocr else {
            return layer;
        };
        // A page that draws nothing (no content, no annotation) has nothing to recognise:
        // rendering and recognising it would cost a second or two, and a hostile file
        // holds 20,000 such pages. (One that draws an empty path on each still costs its
        // OCR, within the parse time limit.)
        if page.objects().is_empty() && page.annotations().is_empty() {
            return layer;
        }
        match ocr::recognise(settings, page, number) {
            Ok(words) => {
                let read = ocr::text_of(&words);
                if ocr::alphanumerics(&read) > ocr::alphanumerics(&layer) {
                    self.ocr_pages.push(number);
                    return read;
                }
            }
            Err(e) => {
                tracing::warn!(page = number, error = %e, "OCR failed");
                if matches!(e, OcrError::Missing(_)) {
                    // Not installed: no page will do better.
                    self.ocr = None;
                }
                self.trouble.get_or_insert_with(|| e.to_string());
            }
        }
        layer
    }
}

/// The page's characters in PDFium's order, with their loose boxes (the same boxes the web
/// app highlights a citation with).
fn read_chars(text: &PdfPageText<'_>) -> Vec<PageChar> {
    page_chars(text.chars().iter().map(|c| {
        let bounds = c.loose_bounds().ok().map(|b| CharBox {
            left: b.left().value,
            bottom: b.bottom().value,
            right: b.right().value,
            top: b.top().value,
        });
        (c.unicode_value(), bounds)
    }))
}

/// pdf-extract (pure Rust). It panics and can loop forever on real files, so it runs on a
/// thread of its own, panics are caught, and the caller stops waiting after `timeout`
/// (the stuck thread is abandoned: a thread cannot be killed, but it holds only its copy
/// of the bytes).
pub fn parse_with_pdf_extract(
    bytes: &[u8],
    timeout: Duration,
) -> Result<ParsedDocument, ParseError> {
    let owned = bytes.to_vec();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("pdf-extract".into())
        .spawn(move || {
            let outcome =
                std::panic::catch_unwind(|| pdf_extract::extract_text_from_mem_by_pages(&owned));
            let _ = tx.send(outcome);
        })
        .map_err(|e| ParseError::Malformed(format!("cannot start the PDF reader: {e}")))?;
    match rx.recv_timeout(timeout) {
        Ok(Ok(Ok(pages))) => Ok(from_pages(None, pages)),
        Ok(Ok(Err(e))) => Err(classify_pdf_extract_error(&e.to_string())),
        Ok(Err(_panic)) => Err(ParseError::Malformed(
            "the PDF reader failed on this file".into(),
        )),
        Err(_) => Err(ParseError::Timeout(timeout.as_secs())),
    }
}

fn classify_pdf_extract_error(message: &str) -> ParseError {
    let lower = message.to_ascii_lowercase();
    if lower.contains("encrypt") || lower.contains("password") || lower.contains("decrypt") {
        ParseError::Encrypted
    } else {
        ParseError::Malformed(message.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_joined_with_their_starts() {
        let doc = from_pages(
            None,
            ["one\n".to_owned(), "two ﬁ".to_owned(), String::new()],
        );
        assert_eq!(doc.text, "one\n\ntwo fi\n\n");
        assert_eq!(doc.page_starts, [0, 5, 13]);
        assert_eq!(doc.page_at(6), 2);
    }

    /// A cell of a table in a real PDF, read by PDFium: in the laid-out text its characters
    /// map back to the characters PDFium drew in that cell, and the bars around it to none.
    #[test]
    fn a_table_cells_characters_map_to_their_boxes_in_the_cell() {
        use lectern_pdfium::testing::fruit_prices;
        let library = std::env::var_os("LECTERN_PDFIUM_LIB")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| {
                lectern_core::default_cache_dir().join("assets/pdfium/libpdfium.so")
            });
        let pdfium =
            pdfium(&library).unwrap_or_else(|e| panic!("{e} (run scripts/fetch-assets.sh pdfium)"));
        let bytes = fruit_prices();
        let document = pdfium.load_pdf_from_byte_slice(&bytes, None).unwrap();
        let page = document.pages().get(0).unwrap();
        let chars = read_chars(&page.text().unwrap());
        let laid = lay_out_tables(&chars).expect("the table is found");
        assert!(
            laid.text.contains("\n| Pears | 12 | 0.80 |\n"),
            "{}",
            laid.text
        );

        // "Pears", two characters into its row: drawn at x = 72 on the baseline y = 672.
        let at = laid.text[..laid.text.find("| Pears").unwrap()]
            .chars()
            .count();
        assert_eq!(
            laid.sources[at..at + 2],
            [None, None],
            "the bar and space are added"
        );
        let cell: Vec<PageChar> = laid.sources[at + 2..at + 7]
            .iter()
            .map(|source| {
                let index = source.expect("a character of the page");
                *chars.iter().find(|c| c.index == index).unwrap()
            })
            .collect();
        let word: String = cell.iter().map(|c| c.ch).collect();
        assert_eq!(word, "Pears");
        let boxes: Vec<CharBox> = cell.iter().map(|c| c.bounds.expect("a box")).collect();
        assert!((boxes[0].left - 72.0).abs() < 0.5, "{boxes:?}");
        for (b, next) in boxes.iter().zip(boxes.iter().skip(1)) {
            assert!(b.right <= next.left + 0.01, "left to right: {boxes:?}");
        }
        for b in &boxes {
            assert!(b.right < 110.0, "inside the first column: {b:?}");
            assert!(
                b.bottom < 672.0 && b.top > 672.0,
                "on the row's baseline: {b:?}"
            );
        }
        assert_eq!(
            laid.sources[at + 7],
            None,
            "the space before the next bar is added"
        );
    }
}
