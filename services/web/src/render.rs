//! PDF pages for the citation panel: the page as an image, and the boxes of the cited
//! passage's characters on it, found by PDFium's character positions. The quote is
//! matched on letters and digits only (NFKC, lower case), window by window, so that the
//! line breaks, hyphenation and spacing of extraction do not stop the match, and a passage
//! that starts on the previous page is still found in its part on this one.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use lectern_core::Error;
use pdfium_render::prelude::*;
use uuid::Uuid;

use lectern_api::Client;

/// Width of page images, in pixels.
const IMAGE_WIDTH: i32 = 1100;
/// Height of page images at most, in pixels: a page four times as tall as it is wide still
/// renders at full width; a taller one is drawn smaller, so that no page size can ask for
/// gigabytes of bitmap.
const IMAGE_MAX_HEIGHT: i32 = 4 * IMAGE_WIDTH;
/// Characters per matching window, and the step between windows.
const WINDOW: usize = 24;
const STEP: usize = 12;
/// Originals and page images kept in memory.
const ORIGINALS: usize = 6;
const IMAGES: usize = 48;

/// A rectangle in page points, origin top left.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
}

/// A page with the cited passage marked.
#[derive(Debug, Clone)]
pub struct PageView {
    pub width: f32,
    pub height: f32,
    /// Where the page image is served.
    pub image: String,
    pub boxes: Vec<Rect>,
}

/// A small least-recently-used cache.
struct Lru<K, V> {
    capacity: usize,
    entries: Vec<(K, V)>,
}

impl<K: PartialEq, V: Clone> Lru<K, V> {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Vec::new(),
        }
    }

    fn get(&mut self, key: &K) -> Option<V> {
        let at = self.entries.iter().position(|(k, _)| k == key)?;
        let entry = self.entries.remove(at);
        let value = entry.1.clone();
        self.entries.push(entry);
        Some(value)
    }

    fn put(&mut self, key: K, value: V) {
        self.entries.retain(|(k, _)| k != &key);
        if self.entries.len() >= self.capacity {
            self.entries.remove(0);
        }
        self.entries.push((key, value));
    }
}

type Bytes = Arc<Vec<u8>>;

pub struct PageRenderer {
    library: Option<PathBuf>,
    originals: Mutex<Lru<(Uuid, i32), Bytes>>,
    images: Mutex<Lru<(Uuid, i32, u32), Bytes>>,
}

impl PageRenderer {
    /// `library`: PDFium's shared library; without it, citations show the passage only.
    pub fn new(library: Option<PathBuf>) -> Self {
        Self {
            library: library.filter(|p| p.is_file()),
            originals: Mutex::new(Lru::new(ORIGINALS)),
            images: Mutex::new(Lru::new(IMAGES)),
        }
    }

    fn pdfium(&self) -> Result<&'static Pdfium, Error> {
        let library = self.library.as_ref().ok_or_else(|| {
            Error::NotFound("page images need PDFium, which is not installed".into())
        })?;
        lectern_pdfium::pdfium(library).map_err(Error::internal_msg)
    }

    /// The PDF's bytes (the caller's access checked by ingest), or `None` for other types.
    async fn pdf(
        &self,
        client: &Client,
        ws: Uuid,
        doc: Uuid,
    ) -> Result<Option<(i32, Bytes)>, Error> {
        let document = client.document(ws, doc).await?;
        if document.media_type != "application/pdf" {
            return Ok(None);
        }
        let key = (doc, document.version);
        if let Some(bytes) = lock(&self.originals).get(&key) {
            return Ok(Some((document.version, bytes)));
        }
        let bytes = Arc::new(client.original(ws, doc).await?.bytes);
        lock(&self.originals).put(key, bytes.clone());
        Ok(Some((document.version, bytes)))
    }

    /// The page as a PNG image.
    pub async fn page_png(
        &self,
        client: &Client,
        ws: Uuid,
        doc: Uuid,
        page: u32,
    ) -> Result<Vec<u8>, Error> {
        let (version, bytes) = self
            .pdf(client, ws, doc)
            .await?
            .ok_or_else(|| Error::NotFound("only PDF pages have images".into()))?;
        if let Some(png) = lock(&self.images).get(&(doc, version, page)) {
            return Ok(png.to_vec());
        }
        let pdfium = self.pdfium()?;
        let png = tokio::task::spawn_blocking(move || render_png(pdfium, &bytes, page))
            .await
            .map_err(|e| Error::internal("page rendering failed", e))??;
        lock(&self.images).put((doc, version, page), Arc::new(png.clone()));
        Ok(png)
    }

    /// The page with the first of `quotes` that is found on it marked (the page is read
    /// once); `None` when the document is not a PDF or PDFium is not installed.
    pub async fn page_view(
        &self,
        client: &Client,
        ws: Uuid,
        doc: Uuid,
        page: u32,
        quotes: Vec<String>,
    ) -> Result<Option<PageView>, Error> {
        if self.library.is_none() {
            return Ok(None);
        }
        let Some((_, bytes)) = self.pdf(client, ws, doc).await? else {
            return Ok(None);
        };
        let pdfium = self.pdfium()?;
        let (width, height, boxes) =
            tokio::task::spawn_blocking(move || locate(pdfium, &bytes, page, &quotes))
                .await
                .map_err(|e| Error::internal("locating the passage failed", e))??;
        Ok(Some(PageView {
            width,
            height,
            image: format!("/w/{ws}/documents/{doc}/pages/{page}.png"),
            boxes,
        }))
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn pdf_error(e: PdfiumError) -> Error {
    Error::Invalid(format!("the PDF could not be read: {e}"))
}

fn open_page<'a>(document: &PdfDocument<'a>, page: u32) -> Result<PdfPage<'a>, Error> {
    let count = document.pages().len() as u32;
    if page == 0 || page > count {
        return Err(Error::NotFound(format!(
            "the document has {count} pages, not a page {page}"
        )));
    }
    document
        .pages()
        .get((page - 1) as PdfPageIndex)
        .map_err(pdf_error)
}

fn render_png(pdfium: &Pdfium, bytes: &[u8], page: u32) -> Result<Vec<u8>, Error> {
    let document = pdfium
        .load_pdf_from_byte_slice(bytes, None)
        .map_err(pdf_error)?;
    let page = open_page(&document, page)?;
    let bitmap = page
        .render_with_config(
            &PdfRenderConfig::new()
                .set_target_width(IMAGE_WIDTH)
                .set_maximum_height(IMAGE_MAX_HEIGHT),
        )
        .map_err(pdf_error)?;
    let (w, h) = (bitmap.width() as u32, bitmap.height() as u32);
    let rgba = bitmap.as_rgba_bytes();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, w, h);
    encoder.set_color(png::ColorType::Rgba);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder
        .write_header()
        .map_err(|e| Error::internal("cannot encode the page image", e))?;
    writer
        .write_image_data(&rgba)
        .map_err(|e| Error::internal("cannot encode the page image", e))?;
    writer
        .finish()
        .map_err(|e| Error::internal("cannot encode the page image", e))?;
    Ok(out)
}

/// Letters and digits of a text, NFKC and lower-cased, each with the index of the
/// character it came from.
pub fn comparable(chars: impl IntoIterator<Item = (usize, char)>) -> Vec<(char, usize)> {
    let mut out = Vec::new();
    for (index, c) in chars {
        for n in lectern_core::normalise(&c.to_string()).chars() {
            if n.is_alphanumeric() {
                out.extend(n.to_lowercase().map(|l| (l, index)));
            }
        }
    }
    out
}

/// The range of `page` (indices into it) that holds `quote`'s text, or the part of it on
/// this page: the densest run of matching windows.
pub fn find_quote(page: &[char], quote: &[char]) -> Option<(usize, usize)> {
    if quote.is_empty() || page.is_empty() {
        return None;
    }
    let window = WINDOW.min(quote.len());
    let mut starts: Vec<usize> = (0..=quote.len() - window).step_by(STEP).collect();
    if starts.last() != Some(&(quote.len() - window)) {
        starts.push(quote.len() - window);
    }
    // (position in the page, position in the quote) of each window found.
    let mut hits: Vec<(usize, usize)> = Vec::new();
    for s in starts {
        let needle = &quote[s..s + window];
        if let Some(at) = page.windows(window).position(|w| w == needle) {
            hits.push((at, s));
        }
    }
    if hits.is_empty() {
        return None;
    }
    hits.sort_unstable();
    // Runs of hits no further apart than a few windows; the run with the most hits wins.
    let gap = window * 8;
    let mut best = (0, hits[0], hits[0]); // (hits, first, last)
    let mut run = (1, hits[0], hits[0]);
    for &h in &hits[1..] {
        if h.0 - run.2.0 <= gap {
            run = (run.0 + 1, run.1, h);
        } else {
            if run.0 > best.0 {
                best = run;
            }
            run = (1, h, h);
        }
    }
    if run.0 > best.0 {
        best = run;
    }
    // Windows start every few characters: extend the match to where the texts part.
    let (mut start, mut q) = best.1;
    while start > 0 && q > 0 && page[start - 1] == quote[q - 1] {
        start -= 1;
        q -= 1;
    }
    let (mut end, mut q) = (best.2.0 + window, best.2.1 + window);
    while end < page.len() && q < quote.len() && page[end] == quote[q] {
        end += 1;
        q += 1;
    }
    Some((start, end))
}

/// Joins character boxes into one rectangle per line.
pub fn merge_lines(rects: &[Rect]) -> Vec<Rect> {
    let mut lines: Vec<Rect> = Vec::new();
    for r in rects.iter().filter(|r| r.w > 0.0 && r.h > 0.0) {
        if let Some(line) = lines.last_mut() {
            let top = line.y.max(r.y);
            let bottom = (line.y + line.h).min(r.y + r.h);
            let overlap = (bottom - top) / line.h.min(r.h);
            if overlap > 0.5 && r.x >= line.x - 2.0 {
                let right = (line.x + line.w).max(r.x + r.w);
                let y = line.y.min(r.y);
                line.h = (line.y + line.h).max(r.y + r.h) - y;
                line.y = y;
                line.w = right - line.x;
                continue;
            }
        }
        lines.push(*r);
    }
    lines
}

fn locate(
    pdfium: &Pdfium,
    bytes: &[u8],
    page: u32,
    quotes: &[String],
) -> Result<(f32, f32, Vec<Rect>), Error> {
    let document = pdfium
        .load_pdf_from_byte_slice(bytes, None)
        .map_err(pdf_error)?;
    let page = open_page(&document, page)?;
    let (width, height) = (page.width().value, page.height().value);
    let text = page.text().map_err(pdf_error)?;
    let mut boxes: Vec<Option<Rect>> = Vec::new();
    let mut chars: Vec<(usize, char)> = Vec::new();
    for (i, c) in text.chars().iter().enumerate() {
        boxes.push(c.loose_bounds().ok().map(|b| Rect {
            x: b.left().value,
            y: height - b.top().value,
            w: b.right().value - b.left().value,
            h: b.top().value - b.bottom().value,
        }));
        if let Some(ch) = c.unicode_char() {
            chars.push((i, ch));
        }
    }
    let page_chars = comparable(chars);
    let letters: Vec<char> = page_chars.iter().map(|(c, _)| *c).collect();
    let found = quotes.iter().find_map(|quote| {
        let quote: Vec<char> = comparable(quote.chars().enumerate())
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        find_quote(&letters, &quote)
    });
    let Some((start, end)) = found else {
        return Ok((width, height, Vec::new()));
    };
    let (first, last) = (page_chars[start].1, page_chars[end - 1].1);
    let rects: Vec<Rect> = (first..=last)
        .filter_map(|i| boxes.get(i).copied().flatten())
        .collect();
    Ok((width, height, merge_lines(&rects)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letters(s: &str) -> Vec<char> {
        comparable(s.chars().enumerate())
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    }

    #[test]
    fn quotes_are_found_across_spacing_hyphenation_and_ligatures() {
        let page = letters(
            "Intro text.\nThe ﬁnal report is sub-\nmitted within thirty days of the audit, says rule 4.\nOther text.",
        );
        let quote = letters("The final report is submitted within thirty days of the audit");
        let (start, end) = find_quote(&page, &quote).expect("found");
        let found: String = page[start..end].iter().collect();
        assert_eq!(found, "thefinalreportissubmittedwithinthirtydaysoftheaudit");
    }

    #[test]
    fn a_quote_starting_on_the_previous_page_is_found_in_its_part_here() {
        let page = letters(
            "continues the thought about the annual leave policy of the staff. Next heading",
        );
        let quote = letters(
            "Earlier page words that are not here at all, then it continues the thought about the annual leave policy of the staff.",
        );
        let (start, end) = find_quote(&page, &quote).expect("found");
        let found: String = page[start..end].iter().collect();
        assert!(found.starts_with("continuesthethought"), "{found}");
        assert!(found.ends_with("ofthestaff"), "{found}");
        assert!(find_quote(&letters("nothing in common here"), &quote).is_none());
    }

    /// A one-page PDF with nothing on its page, `width` by `height` points.
    fn blank_pdf(width: f32, height: f32) -> Vec<u8> {
        lectern_pdfium::testing::pdf(&[lectern_pdfium::testing::Page {
            width,
            height,
            text: Vec::new(),
        }])
    }

    fn test_pdfium() -> &'static Pdfium {
        let library = std::env::var_os("LECTERN_PDFIUM_LIB")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                lectern_core::default_cache_dir().join("assets/pdfium/libpdfium.so")
            });
        lectern_pdfium::pdfium(&library)
            .unwrap_or_else(|e| panic!("{e} (run scripts/fetch-assets.sh pdfium)"))
    }

    /// Width and height from a PNG's header.
    fn png_size(png: &[u8]) -> (u32, u32) {
        let at = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
        (at(16), at(20))
    }

    #[test]
    fn page_images_stay_within_bounds_whatever_the_page_shape() {
        let pdfium = test_pdfium();

        let page = render_png(pdfium, &blank_pdf(550.0, 778.0), 1).unwrap();
        assert_eq!(
            png_size(&page),
            (1100, 1556),
            "an ordinary page, at full width"
        );

        // Ten times as tall as wide: at full width, 1100 by 11,000 pixels. (PDF's largest
        // page, 14,400 points tall and 1 wide, would be 1100 by 15.8 million.)
        let strip = render_png(pdfium, &blank_pdf(200.0, 2000.0), 1).unwrap();
        let (width, height) = png_size(&strip);
        assert!(
            width <= IMAGE_WIDTH as u32 / 2 && height <= IMAGE_MAX_HEIGHT as u32,
            "{width}x{height}"
        );
    }

    /// A PDF table read by ingest becomes Markdown rows (`| Pears | 12 | 0.80 |`, see
    /// services/ingest/src/parse/pdf_tables.rs), and a citation quotes them so: the quote of
    /// a cell, of a row with its bars, or of rows with their rule is marked on the cells
    /// PDFium drew, as a quote of prose is.
    #[test]
    fn a_quote_of_table_rows_is_marked_on_their_cells() {
        use lectern_pdfium::testing::{Page, Placed, pdf};
        let rows = [
            ["Item", "Quantity", "Price"],
            ["Apples", "3", "1.20"],
            ["Pears", "12", "0.80"],
            ["Plums", "7", "2.45"],
        ];
        let mut text = vec![Placed::new(72.0, 740.0, "Fruit prices")];
        for (r, row) in rows.iter().enumerate() {
            let y = 700.0 - 14.0 * r as f32;
            for (x, cell) in [72.0, 200.0, 300.0].into_iter().zip(row) {
                text.push(Placed::new(x, y, *cell));
            }
        }
        let bytes = pdf(&[Page::letter(text)]);
        let marked = |quote: &str| {
            let (_, height, boxes) = locate(test_pdfium(), &bytes, 1, &[quote.to_owned()]).unwrap();
            assert_eq!(height, 792.0);
            boxes
        };
        // Baselines from the top of the page: the header's 92, Apples' 106, Pears' 120.
        let on_baseline = |r: &Rect, y: f32| r.y < y && r.y + r.h > y;

        let cell = marked("Pears");
        assert_eq!(cell.len(), 1, "{cell:?}");
        assert!((cell[0].x - 72.0).abs() < 0.5, "{cell:?}");
        assert!(
            cell[0].x + cell[0].w < 110.0,
            "the first cell only: {cell:?}"
        );
        assert!(on_baseline(&cell[0], 120.0), "{cell:?}");

        let row = marked("| Pears | 12 | 0.80 |");
        assert_eq!(row.len(), 1, "{row:?}");
        assert!((row[0].x - 72.0).abs() < 0.5, "{row:?}");
        let right = row[0].x + row[0].w;
        assert!(
            right > 315.0 && right < 330.0,
            "to the end of 0.80: {row:?}"
        );
        assert!(on_baseline(&row[0], 120.0), "{row:?}");

        let top = marked("| Item | Quantity | Price |\n| --- | --- | --- |\n| Apples | 3 | 1.20 |");
        assert_eq!(top.len(), 2, "the header and the first row: {top:?}");
        assert!(
            on_baseline(&top[0], 92.0) && on_baseline(&top[1], 106.0),
            "{top:?}"
        );
    }

    #[test]
    fn character_boxes_merge_into_lines() {
        let r = |x: f32, y: f32| Rect {
            x,
            y,
            w: 5.0,
            h: 10.0,
        };
        let lines = merge_lines(&[
            r(10.0, 100.0),
            r(15.0, 100.5),
            r(20.0, 100.0),
            r(10.0, 112.0),
            r(15.0, 112.0),
        ]);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].x, 10.0);
        assert_eq!(lines[0].w, 15.0);
        assert_eq!(lines[1].y, 112.0);
    }
}
