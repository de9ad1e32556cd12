use serde::{Deserialize, Serialize};

/// A document's text as extracted, with where its pages and headings begin.
///
/// Offsets count Unicode scalar values (chars) into `text`, like [`crate::Span`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ParsedDocument {
    /// A title found in the document itself (PDF metadata, `<title>`, a first `#` heading).
    pub title: Option<String>,
    pub text: String,
    /// Where each physical page starts; page `n` (1-based) spans from
    /// `page_starts[n - 1]` to the next start or the end. Empty for formats without pages
    /// (the whole text is then page 1).
    pub page_starts: Vec<usize>,
    pub headings: Vec<Heading>,
    /// Pages (from 1) whose text was read by OCR: they had no text layer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ocr_pages: Vec<u32>,
    /// Pages (from 1) left without text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub empty_pages: Vec<u32>,
    /// Why `empty_pages` were not read by OCR (OCR off, Tesseract missing, OCR failed);
    /// none when OCR read them and found no words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub empty_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Heading {
    /// 1 for a title, 2 for a section, and so on.
    pub level: u8,
    pub text: String,
    pub offset: usize,
    /// Where a link can point at this heading in its page (an HTML `id`, without the
    /// `#`), when the format has such a thing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
}

impl ParsedDocument {
    pub fn page_count(&self) -> usize {
        self.page_starts.len().max(1)
    }

    /// The 1-based page holding the char at `offset`.
    pub fn page_at(&self, offset: usize) -> u32 {
        match self.page_starts.partition_point(|&start| start <= offset) {
            0 => 1,
            n => n as u32,
        }
    }

    /// The innermost heading in force at `offset`, if any.
    pub fn heading_at(&self, offset: usize) -> Option<&Heading> {
        let before = self.headings.partition_point(|h| h.offset <= offset);
        self.headings[..before].last()
    }

    /// What the owner should know about how the pages were read, when anything: pages read
    /// by OCR, pages left without text and why.
    pub fn notice(&self) -> Option<String> {
        let pages = self.page_count();
        let mut said = Vec::new();
        if !self.ocr_pages.is_empty() {
            let n = self.ocr_pages.len();
            said.push(format!(
                "{} of {pages} {} read by OCR ({}).",
                n,
                if n == 1 { "page was" } else { "pages were" },
                page_list(&self.ocr_pages)
            ));
        }
        if !self.empty_pages.is_empty() {
            let list = page_list(&self.empty_pages);
            let look = if self.empty_pages.len() == 1 {
                "it looks"
            } else {
                "they look"
            };
            said.push(match &self.empty_reason {
                Some(why) => format!("No text on {list}: {look} scanned, and {why}."),
                None => {
                    format!("No text on {list}, even by OCR: blank, or a picture without words.")
                }
            });
        }
        (!said.is_empty()).then(|| said.join(" "))
    }

    /// The anchor of the nearest heading at or before `offset` that has one: where a link
    /// to the passage at `offset` should land.
    pub fn anchor_at(&self, offset: usize) -> Option<&str> {
        let before = self.headings.partition_point(|h| h.offset <= offset);
        self.headings[..before]
            .iter()
            .rev()
            .find_map(|h| h.anchor.as_deref())
    }
}

/// Why a document could not be read, in words its owner understands. Each is permanent
/// for that file: retrying the same bytes gives the same answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ParseError {
    #[error("the file is empty")]
    Empty,
    #[error("the PDF is encrypted and needs a password; remove the password and upload it again")]
    Encrypted,
    /// No page has text; why, for a person (OCR off, Tesseract missing, or OCR found no
    /// words).
    #[error("no extractable text: {0}")]
    NoText(String),
    #[error("the file is damaged or truncated: {0}")]
    Malformed(String),
    #[error("unsupported file type: {0}")]
    Unsupported(String),
    #[error("reading the document took longer than {0} seconds; it may be damaged")]
    Timeout(u64),
    /// Reading it would take far more memory than any real document: a zip bomb, say.
    #[error("{0}")]
    TooLarge(String),
    /// The reader died on this file (a crash in the parsing library, say); the file is
    /// most likely damaged or made to harm.
    #[error("the file made the document reader crash ({0}); it may be damaged")]
    Crashed(String),
}

/// Bytes of one media type in, text with pages and structure out. Pure: no IO, and the
/// same bytes always give the same document.
pub trait DocumentParser: Send + Sync {
    fn parse(&self, bytes: &[u8], media_type: &str) -> Result<ParsedDocument, ParseError>;
}

/// "page 3", "pages 2-4 and 7": runs of consecutive pages joined.
fn page_list(pages: &[u32]) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &p in pages {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == p => *end = p,
            _ => runs.push((p, p)),
        }
    }
    let runs: Vec<String> = runs
        .iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect();
    let word = if pages.len() == 1 { "page" } else { "pages" };
    match runs.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{word} {} and {last}", rest.join(", ")),
        _ => format!("{word} {}", runs.join("")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_says_which_pages_were_read_by_ocr_and_which_are_empty() {
        let mut doc = ParsedDocument {
            text: "x".into(),
            page_starts: (0..8).collect(),
            ..ParsedDocument::default()
        };
        assert_eq!(doc.notice(), None);
        doc.ocr_pages = vec![2, 3, 4, 7];
        doc.empty_pages = vec![5];
        assert_eq!(
            doc.notice().unwrap(),
            "4 of 8 pages were read by OCR (pages 2-4 and 7). No text on page 5, even by OCR: blank, or a picture without words."
        );
        doc.ocr_pages.clear();
        doc.empty_pages = vec![1, 2, 3, 5];
        doc.empty_reason = Some("OCR is off".into());
        assert_eq!(
            doc.notice().unwrap(),
            "No text on pages 1-3 and 5: they look scanned, and OCR is off."
        );
    }

    #[test]
    fn pages_and_headings_are_found_by_offset() {
        let doc = ParsedDocument {
            title: None,
            text: "a".repeat(30),
            page_starts: vec![0, 10, 20],
            headings: vec![
                Heading {
                    level: 1,
                    text: "One".into(),
                    offset: 0,
                    anchor: Some("one".into()),
                },
                Heading {
                    level: 2,
                    text: "Two".into(),
                    offset: 15,
                    anchor: None,
                },
            ],
            ..ParsedDocument::default()
        };
        assert_eq!(
            [
                doc.page_at(0),
                doc.page_at(9),
                doc.page_at(10),
                doc.page_at(29)
            ],
            [1, 1, 2, 3]
        );
        assert_eq!(doc.heading_at(14).unwrap().text, "One");
        assert_eq!(doc.heading_at(15).unwrap().text, "Two");
        // "Two" has no anchor: a link lands at the nearest heading before it that has.
        assert_eq!(doc.anchor_at(20), Some("one"));
        assert_eq!(ParsedDocument::default().anchor_at(0), None);
        assert_eq!(ParsedDocument::default().page_at(5), 1);
        assert_eq!(ParsedDocument::default().page_count(), 1);
    }
}
