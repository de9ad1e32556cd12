use std::path::Path;
use std::time::Duration;

use lectern_core::{ParseError, ParsedDocument};
use pdfium_render::prelude::*;

use super::normalise;

/// Joins page texts, recording where each page starts. Pages are separated by a blank
/// line so that no word runs across a page break.
fn from_pages(title: Option<String>, pages: impl IntoIterator<Item = String>) -> ParsedDocument {
    let mut text = String::new();
    let mut chars = 0;
    let mut page_starts = Vec::new();
    for page in pages {
        if !page_starts.is_empty() {
            text.push_str("\n\n");
            chars += 2;
        }
        page_starts.push(chars);
        let page = normalise(page.trim_end());
        chars += page.chars().count();
        text.push_str(&page);
    }
    ParsedDocument {
        title,
        text,
        page_starts,
        headings: Vec::new(),
    }
}

/// PDFium, bound once per process (the web app renders pages with the same binding).
pub fn pdfium(library: &Path) -> Result<&'static Pdfium, ParseError> {
    lectern_pdfium::pdfium(library).map_err(ParseError::Unsupported)
}

/// PDFium: text page by page, in reading order (two columns stay apart).
pub fn parse_with_pdfium(library: &Path, bytes: &[u8]) -> Result<ParsedDocument, ParseError> {
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
    let mut pages = Vec::new();
    for page in document.pages().iter() {
        let text = page
            .text()
            .map_err(|e| ParseError::Malformed(format!("page {}: {e}", pages.len() + 1)))?;
        pages.push(text.all());
    }
    if pages.is_empty() {
        return Err(ParseError::Malformed("the PDF has no pages".into()));
    }
    Ok(from_pages(title, pages))
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
}
