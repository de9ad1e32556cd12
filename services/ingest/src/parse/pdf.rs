use std::path::Path;
use std::time::Duration;

use lectern_core::{Heading, ParseError, ParsedDocument, attach_graves, bare_letters};
use lectern_pdfium::ocr::{self, Ocr, OcrError};
use pdfium_render::prelude::*;

use super::pdf_tables::{CharBox, PageChar, lay_out_tables, page_chars};
use super::{normalise, one_line};

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
        let page = normalise(&attach_graves(page.trim_end()));
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
    doc.headings = place_outline(&doc, &outline(&document));
    doc.ocr_pages = reader.ocr_pages;
    if !doc.empty_pages.is_empty() {
        doc.empty_reason = reader.trouble;
    }
    Ok(doc)
}

/// Most outline entries read from one PDF: a real book's outline has hundreds (the
/// gnuplot manual's 648), and a hostile file's cycle or million entries stops here.
const MAX_OUTLINE: usize = 5_000;

/// An entry of a PDF's outline (its bookmarks): the title, how deep it is (1 for the
/// outline's top level) and the page (from 0) it points to.
#[derive(Debug, Clone, PartialEq)]
struct OutlineEntry {
    depth: u8,
    title: String,
    page: usize,
}

/// The PDF's outline in reading order (each entry, then its children, then its next
/// sibling), with the page each entry points to; entries that point to no page of this
/// file are left out.
fn outline(document: &PdfDocument) -> Vec<OutlineEntry> {
    let mut entries = Vec::new();
    let mut pending: Vec<(PdfBookmark, u8)> = document
        .bookmarks()
        .root()
        .into_iter()
        .map(|b| (b, 1))
        .collect();
    let mut seen = 0;
    while let Some((bookmark, depth)) = pending.pop() {
        seen += 1;
        if seen > MAX_OUTLINE {
            break;
        }
        if let Some(next) = bookmark.next_sibling() {
            pending.push((next, depth));
        }
        if let Some(child) = bookmark.first_child() {
            pending.push((child, depth.saturating_add(1)));
        }
        // PDFium reads a GoTo action's destination too, and a remote one's (a page of
        // another file), which is no page of this one.
        let elsewhere = bookmark.action().is_some_and(|a| {
            a.as_remote_destination_action().is_some()
                || a.as_embedded_destination_action().is_some()
        });
        let page = bookmark
            .destination()
            .filter(|_| !elsewhere)
            .and_then(|d| d.page_index().ok());
        if let (Some(title), Some(Ok(page))) = (bookmark.title(), page.map(usize::try_from)) {
            entries.push(OutlineEntry { depth, title, page });
        }
    }
    entries
}

/// The outline's entries as the document's headings, each where its page shows its title:
/// the embedder then reads a chunk with the section it is in, as it does for HTML, DOCX and
/// Markdown. The title is matched on its letters and digits alone (outlines often drop the
/// accents and the section number, and PDFs draw accents apart), preferring a line that
/// holds it alone (a heading) to a line it begins and to a mention in running text; an
/// entry whose page does not show it as whole words is left out, as nothing tells where on
/// the page its section starts.
fn place_outline(doc: &ParsedDocument, entries: &[OutlineEntry]) -> Vec<Heading> {
    if entries.is_empty() {
        return Vec::new();
    }
    let chars: Vec<char> = doc.text.chars().collect();
    let mut pages: std::collections::HashMap<usize, PageLetters> = Default::default();
    let mut done = std::collections::HashSet::new();
    let mut headings = Vec::new();
    for entry in entries {
        // A title longer than any heading, or one placed already (an outline that loops).
        if entry.title.len() > 1_000 || !done.insert((entry.page, entry.title.as_str())) {
            continue;
        }
        let title = one_line(&entry.title);
        let wanted: String = bare_letters(&title).collect();
        if wanted.chars().count() < 2 {
            continue;
        }
        let Some(&start) = doc.page_starts.get(entry.page) else {
            continue;
        };
        let end = doc
            .page_starts
            .get(entry.page + 1)
            .copied()
            .unwrap_or(chars.len());
        let page = pages
            .entry(entry.page)
            .or_insert_with(|| PageLetters::new(&chars, start, end));
        if let Some(offset) = page.find(&wanted, &chars, (start, end)) {
            headings.push(Heading {
                level: entry.depth.saturating_add(1),
                text: title,
                offset,
                anchor: None,
            });
        }
    }
    // In text order; of two at one place, the one later in the outline is in force.
    headings.sort_by_key(|h| h.offset);
    headings
}

/// A page's letters and digits without their accents, lower case, each with the offset
/// in the document of the character it came from.
struct PageLetters {
    letters: String,
    /// (byte in `letters`, offset in the document) of each letter.
    at: Vec<(usize, usize)>,
}

impl PageLetters {
    fn new(chars: &[char], start: usize, end: usize) -> Self {
        let mut letters = String::new();
        let mut at = Vec::new();
        let mut buf = [0u8; 4];
        for (offset, c) in chars[start..end].iter().enumerate() {
            for letter in bare_letters(c.encode_utf8(&mut buf)) {
                at.push((letters.len(), start + offset));
                letters.push(letter);
            }
        }
        Self { letters, at }
    }

    /// Where `wanted` (bare letters) stands as a heading does: the first place where it is
    /// a line of its own (a section number or marks before it, marks after it), or else
    /// where it begins a line, or else where it first stands as whole words.
    fn find(&self, wanted: &str, chars: &[char], page: (usize, usize)) -> Option<usize> {
        let letters = wanted.chars().count();
        if letters == 0 {
            return None;
        }
        let mut best: Option<(u8, usize)> = None;
        for (byte, _) in self.letters.match_indices(wanted) {
            let i = self.at.partition_point(|&(b, _)| b < byte);
            let (Some(&(_, first)), Some(&(_, last))) =
                (self.at.get(i), self.at.get(i + letters - 1))
            else {
                continue;
            };
            let before = chars[page.0..first].last().copied();
            let after = chars[last + 1..page.1].first().copied();
            if before.is_some_and(char::is_alphanumeric) || after.is_some_and(char::is_alphanumeric)
            {
                // Inside a longer word ("data" in "metadata").
                continue;
            }
            // A section number or marks may stand before a heading, marks after it.
            let begins = alone(chars[page.0..first].iter().rev(), |c| !c.is_alphabetic());
            let ends = alone(chars[last + 1..page.1].iter(), |c| !c.is_alphanumeric());
            let rank = u8::from(begins) * 2 + u8::from(begins && ends);
            if best.is_none_or(|(r, _)| rank > r) {
                best = Some((rank, first));
            }
            if rank == 3 {
                break;
            }
        }
        best.map(|(_, offset)| offset)
    }
}

/// Whether nothing but what `skip` passes stands between a place and its line's edge
/// (`around`: the characters from the place outwards).
fn alone<'c>(mut around: impl Iterator<Item = &'c char>, skip: impl Fn(char) -> bool) -> bool {
    around
        .find(|&&c| c == '\n' || !skip(c))
        .is_none_or(|&c| c == '\n')
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

    fn entry(depth: u8, title: &str, page: usize) -> OutlineEntry {
        OutlineEntry {
            depth,
            title: title.to_owned(),
            page,
        }
    }

    #[test]
    fn outline_entries_are_placed_where_their_pages_show_them_as_headings() {
        let mut doc = from_pages(
            None,
            [
                "Chapitre 3 : Notation courante\nVoir la mesure incompl`ete plus loin.\n3.1.7 Commandes\nrythmiques avanc\u{B4}ees\nMesure incompl`ete\nOn cr\u{B4}ee une lev\u{B4}ee.\nLes m\u{B4}etadonn\u{B4}ees du fichier.\n3.1.8 Donn\u{B4}ees ?\nUn fichier.".to_owned(),
                "Autre page\n".to_owned(),
            ],
        );
        let headings = place_outline(
            &doc,
            &[
                entry(1, "3 Notation courante", 0),
                // Outlines often drop accents; the line break inside the title is spacing.
                entry(2, "3.1.7 Commandes rythmiques avancées", 0),
                entry(3, "Mesure incomplete", 0),
                // Without its section number, and inside "métadonnées" first.
                entry(2, "Données", 0),
                // Not shown on the page it points to (it is on the other one): left out.
                entry(3, "Autre page", 0),
                // A page the document does not have.
                entry(1, "Mesure incomplete", 7),
                // An outline that loops gives an entry again: placed once.
                entry(3, "Mesure incomplete", 0),
            ],
        );
        let placed: Vec<(&str, u8, String)> = headings
            .iter()
            .map(|h| {
                let at: String = doc.text.chars().skip(h.offset).take(7).collect();
                (h.text.as_str(), h.level, at)
            })
            .collect();
        assert_eq!(
            placed,
            [
                // Only a mention in the running header: placed there, the best it has.
                ("3 Notation courante", 2, "3 : Not".to_owned()),
                (
                    "3.1.7 Commandes rythmiques avancées",
                    3,
                    "3.1.7 C".to_owned()
                ),
                // The line that holds the title alone, not the sentence that mentions it.
                ("Mesure incomplete", 4, "Mesure ".to_owned()),
                // After its number, before a mark: a heading line all the same.
                ("Données", 3, "Données".to_owned()),
            ]
        );
        // The grave accent TeX drew apart is on its letter in the text.
        let mesure: String = doc.text.chars().skip(headings[2].offset).collect();
        assert!(mesure.starts_with("Mesure incomplète\nOn"), "{mesure:?}");
        let levee = doc.text.find("levée").unwrap();
        let levee = doc.text[..levee].chars().count();
        doc.headings = headings;
        assert_eq!(doc.heading_at(levee).unwrap().text, "Mesure incomplete");
    }

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
