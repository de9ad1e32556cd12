use std::io::{Cursor, Read};

use lectern_core::{Heading, ParseError, ParsedDocument};
use quick_xml::events::Event;
use quick_xml::{Reader, XmlVersion};

use super::{escape_cell, normalise, table_rule};

/// The most `word/document.xml` may unpack to: a thousand-page report's is a few tens of
/// MB; this much text held as a string and its chunks stays well within a server's memory.
const MAX_UNPACKED_BYTES: u64 = 256 << 20;
/// Word's XML packs some 10:1; a zip bomb's repeated bytes pack 1000:1.
const MAX_RATIO: u64 = 100;
/// Below this, any ratio is fine: a short document of repeated markup may pack very well.
const RATIO_FREE_BYTES: u64 = 4 << 20;

/// The body text of a Word document (`word/document.xml`): one paragraph per block,
/// paragraphs styled `Heading N` or `Title` kept as headings, tables kept as tables (see
/// [`Table`]). Word documents have no fixed pages, so everything is page 1. An archive that unpacks to far more than it holds (a
/// zip bomb) is refused before it is unpacked, or as soon as it passes the limit.
pub fn parse(bytes: &[u8]) -> Result<ParsedDocument, ParseError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| ParseError::Malformed(format!("not a readable .docx archive ({e})")))?;
    let entry = archive
        .by_name("word/document.xml")
        .map_err(|_| ParseError::Malformed("the .docx has no word/document.xml".into()))?;
    let limit = unpacked_limit(entry.compressed_size());
    // The declared size may lie; reading stops one byte past the limit either way.
    if entry.size() > limit {
        return Err(zip_bomb(limit));
    }
    let mut xml = Vec::new();
    entry
        .take(limit + 1)
        .read_to_end(&mut xml)
        .map_err(|e| ParseError::Malformed(format!("cannot read word/document.xml ({e})")))?;
    if xml.len() as u64 > limit {
        return Err(zip_bomb(limit));
    }
    let xml = String::from_utf8(xml)
        .map_err(|_| ParseError::Malformed("word/document.xml is not UTF-8".into()))?;

    let mut reader = Reader::from_str(&xml);
    let mut out = Blocks::default();
    let mut table = Table::default();
    let mut paragraph = String::new();
    let mut style: Option<String> = None;
    let mut in_text = false;
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) if e.local_name().as_ref() == "t" => in_text = true,
            Ok(Event::End(e)) if e.local_name().as_ref() == "t" => in_text = false,
            Ok(Event::Empty(e)) | Ok(Event::Start(e)) if e.local_name().as_ref() == "pStyle" => {
                style = val(&e);
            }
            Ok(Event::Empty(e)) if e.local_name().as_ref() == "tab" => paragraph.push('\t'),
            Ok(Event::Empty(e)) if e.local_name().as_ref() == "br" => paragraph.push('\n'),
            Ok(Event::Text(t)) if in_text => {
                paragraph.push_str(&t.xml_content(XmlVersion::Implicit1_0))
            }
            Ok(Event::GeneralRef(r)) if in_text => {
                let name = r.xml_content(XmlVersion::Implicit1_0);
                match r.resolve_char_ref() {
                    Ok(Some(c)) => paragraph.push(c),
                    _ => paragraph.push_str(match name.as_ref() {
                        "amp" => "&",
                        "lt" => "<",
                        "gt" => ">",
                        "quot" => "\"",
                        "apos" => "'",
                        _ => "",
                    }),
                }
            }
            Ok(Event::Start(e)) if e.local_name().as_ref() == "tbl" => table.open(),
            Ok(Event::End(e)) if e.local_name().as_ref() == "tbl" => {
                if let Some(block) = table.close() {
                    out.push(&block, None);
                }
            }
            Ok(Event::Start(e)) if e.local_name().as_ref() == "tr" => table.start_row(),
            Ok(Event::End(e)) if e.local_name().as_ref() == "tr" => table.end_row(),
            Ok(Event::Start(e)) if e.local_name().as_ref() == "tc" => table.start_cell(),
            Ok(Event::Empty(e)) if e.local_name().as_ref() == "gridSpan" => {
                table.span(val(&e).and_then(|v| v.trim().parse().ok()).unwrap_or(1));
            }
            Ok(Event::End(e)) if e.local_name().as_ref() == "tc" => table.end_cell(),
            Ok(Event::End(e)) if e.local_name().as_ref() == "p" => {
                let para = normalise(paragraph.trim());
                if table.is_open() {
                    table.add(&para);
                } else if !para.is_empty() {
                    out.push(&para, style.as_deref().and_then(heading_level));
                }
                paragraph.clear();
                style = None;
            }
            Ok(Event::Eof) => break,
            Err(e) => return Err(ParseError::Malformed(format!("word/document.xml: {e}"))),
            _ => {}
        }
    }
    let title = out
        .headings
        .iter()
        .find(|h| h.level == 1)
        .map(|h| h.text.clone());
    Ok(ParsedDocument {
        title,
        text: out.text,
        page_starts: Vec::new(),
        headings: out.headings,
        ..ParsedDocument::default()
    })
}

/// The document's text block by block, blocks apart by a blank line.
#[derive(Default)]
struct Blocks {
    text: String,
    chars: usize,
    headings: Vec<Heading>,
}

impl Blocks {
    fn push(&mut self, block: &str, heading: Option<u8>) {
        if !self.text.is_empty() {
            self.text.push_str("\n\n");
            self.chars += 2;
        }
        if let Some(level) = heading {
            self.headings.push(Heading {
                level,
                text: block.to_owned(),
                offset: self.chars,
                anchor: None,
            });
        }
        self.chars += block.chars().count();
        self.text.push_str(block);
    }
}

/// A table read row by row into one block of Markdown table lines (`| a | b |`, the first
/// row set off as the header), so that each value keeps its row and column in the text
/// the model reads and the chunks are cut from. A cell merged across columns is followed
/// by empty ones, so the columns stay aligned. A table inside a cell is read into that
/// cell as plain text.
#[derive(Default)]
struct Table {
    depth: usize,
    lines: Vec<String>,
    row: Vec<String>,
    cell: String,
    /// Grid columns the current cell spans.
    columns: usize,
}

impl Table {
    fn is_open(&self) -> bool {
        self.depth > 0
    }

    fn open(&mut self) {
        self.depth += 1;
    }

    /// The table's block when the outermost table ends and held any text.
    fn close(&mut self) -> Option<String> {
        self.depth = self.depth.saturating_sub(1);
        if self.depth > 0 {
            return None;
        }
        let lines = std::mem::take(&mut self.lines);
        (!lines.is_empty()).then(|| lines.join("\n"))
    }

    fn start_row(&mut self) {
        if self.depth == 1 {
            self.row.clear();
        }
    }

    fn end_row(&mut self) {
        if self.depth != 1 || self.row.iter().all(String::is_empty) {
            return;
        }
        let width = self.row.len();
        self.lines.push(format!("| {} |", self.row.join(" | ")));
        if self.lines.len() == 1 {
            self.lines.push(table_rule(width));
        }
        self.row.clear();
    }

    fn start_cell(&mut self) {
        if self.depth == 1 {
            self.cell.clear();
            self.columns = 1;
        }
    }

    /// The current cell spans `columns` grid columns (Word's `gridSpan`); at most a
    /// hundred, whatever the file says.
    fn span(&mut self, columns: usize) {
        if self.depth == 1 {
            self.columns = columns.clamp(1, 100);
        }
    }

    fn end_cell(&mut self) {
        if self.depth == 1 {
            let cell = std::mem::take(&mut self.cell);
            self.row.push(cell);
            for _ in 1..self.columns {
                self.row.push(String::new());
            }
        }
    }

    /// A paragraph of the current cell (of the outermost table).
    fn add(&mut self, paragraph: &str) {
        let text = paragraph.split_whitespace().collect::<Vec<_>>().join(" ");
        if text.is_empty() {
            return;
        }
        if !self.cell.is_empty() {
            self.cell.push(' ');
        }
        self.cell.push_str(&escape_cell(&text));
    }
}

/// An element's `w:val` attribute.
fn val(e: &quick_xml::events::BytesStart) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == "val")
        .map(|a| a.value.into_owned())
}

/// How far an entry of `packed` bytes may unpack.
fn unpacked_limit(packed: u64) -> u64 {
    packed
        .saturating_mul(MAX_RATIO)
        .clamp(RATIO_FREE_BYTES, MAX_UNPACKED_BYTES)
}

fn zip_bomb(limit: u64) -> ParseError {
    let how_far = if limit == MAX_UNPACKED_BYTES {
        format!("more than {} MB", limit >> 20)
    } else {
        format!("over {MAX_RATIO} times its size")
    };
    ParseError::TooLarge(format!(
        "the DOCX unpacks to {how_far}; it looks like a zip bomb"
    ))
}

fn heading_level(style: &str) -> Option<u8> {
    let lower = style.to_ascii_lowercase().replace(' ', "");
    if lower == "title" {
        return Some(1);
    }
    lower
        .strip_prefix("heading")
        .and_then(|n| n.parse::<u8>().ok())
        .map(|n| n.clamp(1, 5) + 1)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn docx(body: &str) -> Vec<u8> {
        let mut buf = Cursor::new(Vec::new());
        let mut zip = zip::ZipWriter::new(&mut buf);
        zip.start_file(
            "word/document.xml",
            zip::write::SimpleFileOptions::default(),
        )
        .unwrap();
        write!(zip, r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#).unwrap();
        zip.finish().unwrap();
        buf.into_inner()
    }

    #[test]
    fn paragraphs_and_headings() {
        let bytes = docx(concat!(
            r#"<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Travel</w:t></w:r></w:p>"#,
            r#"<w:p><w:r><w:t xml:space="preserve">Book trains </w:t></w:r><w:r><w:t>&amp; hotels.</w:t></w:r></w:p>"#,
            r#"<w:p></w:p><w:p><w:r><w:t>Claims</w:t><w:tab/><w:t>monthly</w:t></w:r></w:p>"#,
        ));
        let doc = parse(&bytes).unwrap();
        assert_eq!(
            doc.text,
            "Travel\n\nBook trains & hotels.\n\nClaims\tmonthly"
        );
        assert_eq!(
            doc.headings,
            [Heading {
                level: 2,
                text: "Travel".into(),
                offset: 0,
                anchor: None,
            }]
        );
    }

    #[test]
    fn tables_keep_their_rows_and_columns() {
        let cell = |t: &str| format!("<w:tc><w:p><w:r><w:t>{t}</w:t></w:r></w:p></w:tc>");
        let row = |cells: &[&str]| {
            format!(
                "<w:tr>{}</w:tr>",
                cells.iter().map(|c| cell(c)).collect::<String>()
            )
        };
        let bytes = docx(&format!(
            "{}<w:tbl><w:tblPr/>{}{}{}</w:tbl>{}",
            r#"<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Rates</w:t></w:r></w:p>"#,
            row(&["Grade", "Daily rate"]),
            row(&["A | B", "120 EUR"]),
            // A cell of two paragraphs, and a table inside a cell.
            "<w:tr><w:tc><w:p><w:r><w:t>C</w:t></w:r></w:p><w:p><w:r><w:t>(senior)</w:t></w:r></w:p></w:tc>\
             <w:tc><w:tbl><w:tr><w:tc><w:p><w:r><w:t>150</w:t></w:r></w:p></w:tc>\
             <w:tc><w:p><w:r><w:t>EUR</w:t></w:r></w:p></w:tc></w:tr></w:tbl></w:tc></w:tr>",
            "<w:p><w:r><w:t>After the table.</w:t></w:r></w:p>",
        ));
        let doc = parse(&bytes).unwrap();
        assert_eq!(
            doc.text,
            "Rates\n\n| Grade | Daily rate |\n| --- | --- |\n| A \\| B | 120 EUR |\n\
             | C (senior) | 150 EUR |\n\nAfter the table."
        );
        assert_eq!(doc.headings.len(), 1);
    }

    #[test]
    fn the_unpacked_limit_follows_the_packed_size_within_bounds() {
        assert_eq!(unpacked_limit(1 << 10), RATIO_FREE_BYTES);
        assert_eq!(unpacked_limit(1 << 20), 100 << 20);
        assert_eq!(unpacked_limit(10 << 20), MAX_UNPACKED_BYTES);
        assert_eq!(unpacked_limit(u64::MAX), MAX_UNPACKED_BYTES);
        assert_eq!(
            zip_bomb(MAX_UNPACKED_BYTES).to_string(),
            "the DOCX unpacks to more than 256 MB; it looks like a zip bomb"
        );
    }

    #[test]
    fn a_broken_archive_is_malformed() {
        assert!(matches!(
            parse(b"PK\x03\x04garbage"),
            Err(ParseError::Malformed(_))
        ));
        let mut truncated = docx("<w:p><w:r><w:t>x</w:t></w:r></w:p>");
        truncated.truncate(truncated.len() / 2);
        assert!(matches!(parse(&truncated), Err(ParseError::Malformed(_))));
    }
}
