//! Parsing: bytes of a known media type in, text with page boundaries and headings out.
//!
//! Pure functions behind the core's `DocumentParser` seam. PDF has two backends: PDFium
//! (bound at run time when its library is configured; faster, keeps two-column order, and
//! gives character boxes, from which tables are found: `pdf_tables.rs`) and pdf-extract
//! (pure Rust), which can panic or hang on real files and so runs isolated. DOCX, HTML and
//! (read with PDFium) PDF tables become Markdown table rows, so that a value keeps its row
//! and column.
//! The server parses each stored original in a worker process of its own ([`isolate`]).

mod detect;
mod docx;
mod html;
pub mod isolate;
mod markdown;
mod pdf;
mod pdf_tables;

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use detect::{MediaType, detect_media_type};
pub use isolate::{Isolation, PARSE_JOB};
use lectern_core::{DocumentParser, ParseError, ParsedDocument};
pub use lectern_pdfium::ocr::Ocr;
pub use markdown::parse as parse_markdown;
pub use pdf::pdfium;

/// The parser for every supported type.
#[derive(Debug, Clone)]
pub struct Parsers {
    /// PDFium's shared library; `None` uses pdf-extract for PDFs.
    pub pdfium: Option<PathBuf>,
    /// How long one document may take to parse.
    pub timeout: Duration,
    /// Stored files are parsed in a limited worker process; `None` parses in this process.
    pub isolation: Option<Isolation>,
    /// How PDF pages without a text layer are read (needs PDFium); `None`: they are not.
    pub ocr: Option<Ocr>,
}

impl Default for Parsers {
    fn default() -> Self {
        Self {
            pdfium: None,
            timeout: Duration::from_secs(120),
            isolation: None,
            ocr: None,
        }
    }
}

impl Parsers {
    /// Parses a stored file: in a worker process when isolation is set, else here on the
    /// blocking pool. The outer `Err` is the file missing or no worker starting, which are
    /// not the file's fault; the inner one is why the file cannot be read.
    pub async fn parse_file(
        &self,
        path: &Path,
        media_type: &str,
    ) -> std::io::Result<Result<ParsedDocument, ParseError>> {
        match &self.isolation {
            Some(isolation) => {
                tokio::fs::metadata(path).await?;
                isolate::parse(isolation, self, path, media_type).await
            }
            None => {
                let bytes = tokio::fs::read(path).await?;
                let parsers = self.clone();
                let media_type = media_type.to_owned();
                tokio::task::spawn_blocking(move || parsers.parse(&bytes, &media_type))
                    .await
                    .map_err(std::io::Error::other)
            }
        }
    }
}

impl DocumentParser for Parsers {
    fn parse(&self, bytes: &[u8], media_type: &str) -> Result<ParsedDocument, ParseError> {
        if bytes.is_empty() {
            return Err(ParseError::Empty);
        }
        let doc = match MediaType::from_mime(media_type)? {
            MediaType::Pdf => match &self.pdfium {
                Some(lib) => pdf::parse_with_pdfium(lib, bytes, self.ocr.as_ref())?,
                None => {
                    let mut doc = pdf::parse_with_pdf_extract(bytes, self.timeout)?;
                    if !doc.empty_pages.is_empty() {
                        doc.empty_reason = Some("OCR needs PDFium, which is not set up".into());
                    }
                    doc
                }
            },
            MediaType::Docx => docx::parse(bytes)?,
            MediaType::Html => html::parse(&decode_utf8(bytes)?),
            MediaType::Markdown => markdown::parse(&decode_utf8(bytes)?),
            MediaType::Text => plain(&decode_utf8(bytes)?),
        };
        if doc.text.trim().is_empty() {
            return Err(if media_type == MediaType::Pdf.mime() {
                ParseError::NoText(match &doc.empty_reason {
                    Some(why) => format!("the document looks scanned, and {why}"),
                    None => "OCR found no words on its pages; they are blank or pictures".into(),
                })
            } else {
                ParseError::Empty
            });
        }
        Ok(doc)
    }
}

fn decode_utf8(bytes: &[u8]) -> Result<String, ParseError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(s.to_owned()),
        // Windows-1252 and Latin-1 text files are common; their bytes map to chars 1:1
        // closely enough for search, and nothing is lost silently for valid UTF-8.
        Err(_) => Ok(bytes.iter().map(|&b| b as char).collect()),
    }
}

fn plain(text: &str) -> ParsedDocument {
    ParsedDocument {
        title: None,
        text: normalise(text),
        ..ParsedDocument::default()
    }
}

pub use lectern_core::normalise;

/// A run of text as one normalised line: its whitespace (line breaks too) collapsed to
/// single spaces. What an HTML text node and a PDF outline title are read as.
fn one_line(text: &str) -> String {
    normalise(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// A Markdown table's rule under its header row, for `columns` columns.
fn table_rule(columns: usize) -> String {
    format!("|{}", " --- |".repeat(columns))
}

/// A table cell's text: a bar in a value would start a new column.
fn escape_cell(text: &str) -> String {
    text.replace('|', "\\|")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_unsupported_inputs_say_why() {
        let p = Parsers::default();
        assert_eq!(p.parse(b"", "text/plain"), Err(ParseError::Empty));
        assert_eq!(p.parse(b"  \n ", "text/plain"), Err(ParseError::Empty));
        assert!(matches!(
            p.parse(b"x", "image/png"),
            Err(ParseError::Unsupported(_))
        ));
    }

    #[test]
    fn latin1_text_is_read_not_refused() {
        let doc = Parsers::default()
            .parse(b"caf\xe9 au lait", "text/plain")
            .unwrap();
        assert_eq!(doc.text, "café au lait");
    }
}
