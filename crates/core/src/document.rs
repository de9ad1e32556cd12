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
    #[error("no extractable text; the document looks scanned and OCR is not enabled")]
    NoText,
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

#[cfg(test)]
mod tests {
    use super::*;

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
