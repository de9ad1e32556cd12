//! PDF pages for the citation panel: the page as an image, and the boxes of the cited
//! passage's characters on it, found by PDFium's character positions. The quote is
//! matched on letters and digits only (NFKC, lower case), window by window, so that the
//! line breaks, hyphenation and spacing of extraction do not stop the match, and a passage
//! that starts on the previous page is still found in its part on this one.
//!
//! A scanned page has no characters of its own: it is read by OCR with the settings ingest
//! read it with (`lectern_pdfium::ocr`), and the recognised words' boxes stand in for them.
//!
//! A page is drawn once, image and characters together ([`RenderedPage`]), and kept. The
//! server draws it in a worker process ([`RENDER_JOB`], through `lectern_runtime::worker`)
//! with limited memory and CPU time and no network, so that a hostile PDF that crashes or
//! stalls PDFium fails only that page; binaries whose `main` does not offer the job (test
//! binaries) draw in process.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lectern_core::Error;
use lectern_pdfium::ocr::{self, Ocr};
use lectern_runtime::worker::{self, Death, Isolation, Job};
use pdfium_render::prelude::*;
use serde::{Deserialize, Serialize};
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
/// Originals and drawn pages kept in memory.
const ORIGINALS: usize = 6;
const IMAGES: usize = 48;
/// Most bytes of a render worker's answer: the largest image (1100 by 4400 pixels,
/// 19.4 MB even uncompressed) and the page's characters.
const MAX_ANSWER: usize = 64 * 1024 * 1024;
/// What every PNG file starts with.
const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// The web app's worker job: drawing one page of a PDF.
pub const RENDER_JOB: Job = Job {
    name: "render",
    run: render_job,
    reads: render_reads,
};

/// What the render job reads: OCR's program and data, the PDFium library (the PDF comes on
/// standard input).
fn render_reads(args: &[OsString]) -> Vec<PathBuf> {
    let [_, _, _, _, ocr, library] = args else {
        return Vec::new();
    };
    Ocr::paths_in_arg(ocr)
        .into_iter()
        .chain([PathBuf::from(library)])
        .collect()
}

/// A rectangle in page points, origin top left.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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

/// A page drawn: its image and what the passage is found by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedPage {
    /// The page's size, in points.
    pub width: f32,
    pub height: f32,
    /// The page's characters in PDFium's order: the character (none where PDFium knows
    /// no Unicode for it) and its box on the page (none where it has no box).
    pub chars: Vec<(Option<char>, Option<Rect>)>,
    /// The page as a PNG image (after the rest in a worker's answer).
    #[serde(skip)]
    pub png: Vec<u8>,
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
    /// Pages are drawn in worker processes so bounded; `None` draws them in this process.
    isolation: Option<Isolation>,
    /// How long drawing one page may take in a worker.
    timeout: Duration,
    /// How pages without text are read, as ingest read them; `None`: they are not.
    ocr: Option<Ocr>,
    originals: Mutex<Lru<(Uuid, i32), Bytes>>,
    images: Mutex<Lru<(Uuid, i32, u32), Arc<RenderedPage>>>,
    /// Pages drawn at once, one per core: each drawing holds a worker's memory and a copy
    /// of its PDF, so many requests at once wait their turn instead of exhausting both.
    drawing: tokio::sync::Semaphore,
}

impl PageRenderer {
    /// `library`: PDFium's shared library; without it, citations show the passage only.
    /// `isolation`: the worker processes that draw pages (`timeout` each); `None` draws
    /// them in this process.
    pub fn new(library: Option<PathBuf>, isolation: Option<Isolation>, timeout: Duration) -> Self {
        Self {
            library: library.filter(|p| p.is_file()),
            isolation,
            timeout,
            ocr: None,
            originals: Mutex::new(Lru::new(ORIGINALS)),
            images: Mutex::new(Lru::new(IMAGES)),
            drawing: tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
            ),
        }
    }

    /// Pages without a text layer are read by OCR with `ocr` (ingest's settings), so that
    /// a passage quoted from their recognised text is found on them.
    pub fn with_ocr(mut self, ocr: Option<Ocr>) -> Self {
        self.ocr = ocr;
        self
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

    /// The page drawn, from the cache or drawn now (once for its image and its
    /// passages); `None` when the document is not a PDF.
    async fn page(
        &self,
        client: &Client,
        ws: Uuid,
        doc: Uuid,
        page: u32,
    ) -> Result<Option<Arc<RenderedPage>>, Error> {
        let Some((version, bytes)) = self.pdf(client, ws, doc).await? else {
            return Ok(None);
        };
        if let Some(drawn) = lock(&self.images).get(&(doc, version, page)) {
            return Ok(Some(drawn));
        }
        let _turn = self
            .drawing
            .acquire()
            .await
            .map_err(|e| Error::internal("page drawing stopped", e))?;
        // Drawn meanwhile for another request (the image and the view of one page come
        // together): drawn once.
        if let Some(drawn) = lock(&self.images).get(&(doc, version, page)) {
            return Ok(Some(drawn));
        }
        let drawn = Arc::new(self.draw(bytes, page).await?);
        lock(&self.images).put((doc, version, page), drawn.clone());
        Ok(Some(drawn))
    }

    /// Draws page `page` (from 1) of the PDF `bytes`, uncached: in a worker process when
    /// isolation is set, else here on the blocking pool. A worker that crashes, runs out
    /// of memory or time is an error for this page, in words for the person.
    pub async fn draw(&self, bytes: Arc<Vec<u8>>, page: u32) -> Result<RenderedPage, Error> {
        let library = self.library.as_ref().ok_or_else(|| {
            Error::NotFound("page images need PDFium, which is not installed".into())
        })?;
        if let Some(isolation) = &self.isolation {
            return draw_in_worker(isolation, library, self.timeout, &self.ocr, &bytes, page).await;
        }
        let pdfium = lectern_pdfium::pdfium(library).map_err(Error::internal_msg)?;
        let ocr = self.ocr.clone();
        tokio::task::spawn_blocking(move || {
            render_page(
                pdfium,
                &bytes,
                page,
                IMAGE_WIDTH,
                IMAGE_MAX_HEIGHT,
                ocr.as_ref(),
            )
        })
        .await
        .map_err(|e| Error::internal("page rendering failed", e))?
    }

    /// The page as a PNG image.
    pub async fn page_png(
        &self,
        client: &Client,
        ws: Uuid,
        doc: Uuid,
        page: u32,
    ) -> Result<Vec<u8>, Error> {
        let drawn = self
            .page(client, ws, doc, page)
            .await?
            .ok_or_else(|| Error::NotFound("only PDF pages have images".into()))?;
        Ok(drawn.png.clone())
    }

    /// The page with the first of `quotes` that is found on it marked (the page is drawn
    /// once, for this and its image); `None` when the document is not a PDF or PDFium is
    /// not installed.
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
        let Some(drawn) = self.page(client, ws, doc, page).await? else {
            return Ok(None);
        };
        let (width, height) = (drawn.width, drawn.height);
        let boxes = tokio::task::spawn_blocking(move || mark(&drawn, &quotes))
            .await
            .map_err(|e| Error::internal("locating the passage failed", e))?;
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

/// Draws a page in a worker: the PDF goes to its standard input.
async fn draw_in_worker(
    isolation: &Isolation,
    library: &Path,
    timeout: Duration,
    ocr: &Option<Ocr>,
    bytes: &[u8],
    page: u32,
) -> Result<RenderedPage, Error> {
    let numbers = [
        bytes.len().to_string(),
        page.to_string(),
        IMAGE_WIDTH.to_string(),
        IMAGE_MAX_HEIGHT.to_string(),
        serde_json::to_string(ocr).map_err(|e| Error::internal("OCR settings", e))?,
    ];
    let args = numbers.iter().map(OsStr::new).chain([library.as_os_str()]);
    let answer = worker::run(isolation, RENDER_JOB.name, args, bytes, timeout, MAX_ANSWER)
        .await
        .map_err(|e| Error::internal("cannot start a worker to draw the page", e))?;
    match answer {
        Ok(answer) => read_answer(&answer),
        Err(death) => Err(death_error(death, page, isolation.memory_mb, timeout)),
    }
}

/// Why a render worker died, in words for the person looking at the page.
fn death_error(death: Death, page: u32, memory_mb: u64, timeout: Duration) -> Error {
    match death {
        Death::OutOfMemory => Error::TooLarge(format!(
            "drawing page {page} needed more than the {memory_mb} MB of memory a page may use"
        )),
        Death::Timeout => Error::Invalid(format!(
            "drawing page {page} took longer than {} seconds; the PDF may be damaged",
            timeout.as_secs()
        )),
        Death::Killed => Error::TooLarge(format!(
            "the system stopped drawing page {page}, most often because the machine ran out of memory"
        )),
        Death::Signal(signal) => Error::Invalid(format!(
            "the PDF made the page renderer crash (signal {signal}); it is damaged, or page {page} needs more than the {memory_mb} MB of memory a page may use"
        )),
        Death::Exit(code) => {
            Error::internal_msg(format!("a page renderer failed (exit status {code})"))
        }
        Death::AnswerTooLarge => Error::TooLarge(format!("page {page} holds too much to be shown")),
    }
}

/// Why a page could not be drawn, as a worker answers it.
#[derive(Debug, Serialize, Deserialize)]
enum Failure {
    NotFound(String),
    Invalid(String),
    Internal(String),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(m) => Self::NotFound(m),
            Error::Invalid(m) => Self::Invalid(m),
            other => Self::Internal(match std::error::Error::source(&other) {
                Some(source) => format!("{other}: {source}"),
                None => other.to_string(),
            }),
        }
    }
}

impl From<Failure> for Error {
    fn from(f: Failure) -> Self {
        match f {
            Failure::NotFound(m) => Error::NotFound(m),
            Failure::Invalid(m) => Error::Invalid(m),
            Failure::Internal(m) => Error::internal_msg(m),
        }
    }
}

/// The render job: `<PDF length> <page> <width> <max height> <OCR settings as JSON>
/// <PDFium library>`, the PDF on standard input. Answers one line of JSON, the outcome
/// without the image, then the PNG's bytes.
fn render_job(args: &[OsString], out: &mut dyn Write) -> Result<(), String> {
    let [length, page, width, max_height, ocr, library] = args else {
        return Err("usage: render PDF-LENGTH PAGE WIDTH MAX-HEIGHT OCR PDFIUM".into());
    };
    let number = |s: &OsString| s.to_str().and_then(|s| s.parse::<u64>().ok());
    let ocr = Ocr::from_arg(ocr);
    let (Some(length), Some(page), Some(width), Some(max_height), Some(ocr)) = (
        number(length),
        number(page).and_then(|n| u32::try_from(n).ok()),
        number(width).and_then(|n| i32::try_from(n).ok()),
        number(max_height).and_then(|n| i32::try_from(n).ok()),
        ocr,
    ) else {
        return Err("the length, page and sizes must be numbers, OCR's settings JSON".into());
    };
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(length)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read the PDF: {e}"))?;
    let outcome: Result<RenderedPage, Failure> = match worker::escape_fault() {
        Some(said) => Err(Failure::Invalid(said)),
        None => lectern_pdfium::pdfium(Path::new(library))
            .map_err(Error::internal_msg)
            .and_then(|pdfium| render_page(pdfium, &bytes, page, width, max_height, ocr.as_ref()))
            .map_err(Failure::from),
    };
    write_answer(out, &outcome).map_err(|e| format!("cannot write the page: {e}"))
}

/// One line of JSON (the outcome without the image), then the image's bytes.
fn write_answer(
    out: &mut dyn Write,
    outcome: &Result<RenderedPage, Failure>,
) -> std::io::Result<()> {
    serde_json::to_writer(&mut *out, outcome)?;
    out.write_all(b"\n")?;
    if let Ok(drawn) = outcome {
        out.write_all(&drawn.png)?;
    }
    Ok(())
}

/// A render worker's answer (see [`write_answer`]) read back.
fn read_answer(answer: &[u8]) -> Result<RenderedPage, Error> {
    let unreadable = |why: String| {
        Error::internal_msg(format!("a page renderer's answer was unreadable: {why}"))
    };
    let Some(end) = answer.iter().position(|&b| b == b'\n') else {
        return Err(unreadable("no outcome".into()));
    };
    let outcome: Result<RenderedPage, Failure> =
        serde_json::from_slice(&answer[..end]).map_err(|e| unreadable(e.to_string()))?;
    let mut drawn = outcome?;
    drawn.png = answer[end + 1..].to_vec();
    if !drawn.png.starts_with(PNG_SIGNATURE) {
        return Err(unreadable("no PNG image".into()));
    }
    Ok(drawn)
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

/// Draws page `page` (from 1) of a PDF, `width` pixels wide and at most `max_height`
/// tall, and reads its characters with their boxes: by OCR with `ocr`, as ingest did,
/// when the page has no text layer.
pub fn render_page(
    pdfium: &Pdfium,
    bytes: &[u8],
    number: u32,
    width: i32,
    max_height: i32,
    ocr: Option<&Ocr>,
) -> Result<RenderedPage, Error> {
    let document = pdfium
        .load_pdf_from_byte_slice(bytes, None)
        .map_err(pdf_error)?;
    let page = open_page(&document, number)?;
    let png = encode_png(&page, width, max_height)?;
    let (width, height) = (page.width().value, page.height().value);
    let text = page.text().map_err(pdf_error)?;
    if let Some(ocr) = ocr
        && ocr::needs_ocr(&text.all())
    {
        match ocr::recognise(ocr, &page, number) {
            Ok(words) => {
                let chars = ocr::lay_out(&words)
                    .into_iter()
                    .map(|(c, rect)| (Some(c), rect.map(|[x, y, w, h]| Rect { x, y, w, h })))
                    .collect();
                return Ok(RenderedPage {
                    width,
                    height,
                    chars,
                    png,
                });
            }
            // The page is still shown; only its passage cannot be marked.
            Err(e) => tracing::warn!(error = %e, "a scanned page could not be read"),
        }
    }
    let chars = text
        .chars()
        .iter()
        .map(|c| {
            // A box that is not finite cannot be drawn (nor sent as JSON).
            let rect = c
                .loose_bounds()
                .ok()
                .map(|b| Rect {
                    x: b.left().value,
                    y: height - b.top().value,
                    w: b.right().value - b.left().value,
                    h: b.top().value - b.bottom().value,
                })
                .filter(|r| [r.x, r.y, r.w, r.h].iter().all(|v| v.is_finite()));
            (c.unicode_char(), rect)
        })
        .collect();
    Ok(RenderedPage {
        width,
        height,
        chars,
        png,
    })
}

fn encode_png(page: &PdfPage, width: i32, max_height: i32) -> Result<Vec<u8>, Error> {
    let bitmap = page
        .render_with_config(
            &PdfRenderConfig::new()
                .set_target_width(width)
                .set_maximum_height(max_height),
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

/// Letters and digits of a text, without accents and lower-cased, each with the index of
/// the character it came from (a PDF may draw an accent apart from its letter, which the
/// passage's text has on it).
pub fn comparable(chars: impl IntoIterator<Item = (usize, char)>) -> Vec<(char, usize)> {
    let mut out = Vec::new();
    for (index, c) in chars {
        let mut one = [0u8; 4];
        out.extend(lectern_core::bare_letters(c.encode_utf8(&mut one)).map(|l| (l, index)));
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

/// The boxes, one per line, of the first of `quotes` found on the page; none when none is.
pub fn mark(page: &RenderedPage, quotes: &[String]) -> Vec<Rect> {
    let page_chars = comparable(
        page.chars
            .iter()
            .enumerate()
            .filter_map(|(i, &(c, _))| c.map(|c| (i, c))),
    );
    let letters: Vec<char> = page_chars.iter().map(|(c, _)| *c).collect();
    let found = quotes.iter().find_map(|quote| {
        let quote: Vec<char> = comparable(quote.chars().enumerate())
            .into_iter()
            .map(|(c, _)| c)
            .collect();
        find_quote(&letters, &quote)
    });
    let Some((start, end)) = found else {
        return Vec::new();
    };
    let (first, last) = (page_chars[start].1, page_chars[end - 1].1);
    let rects: Vec<Rect> = (first..=last)
        .filter_map(|i| page.chars.get(i).and_then(|&(_, rect)| rect))
        .collect();
    merge_lines(&rects)
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

    /// One of the real test documents (scripts/fetch-test-docs.sh).
    fn test_doc(name: &str) -> Vec<u8> {
        let dir = std::env::var_os("LECTERN_TEST_DOCS_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| lectern_core::default_cache_dir().join("test-docs"));
        std::fs::read(dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e} (run scripts/fetch-test-docs.sh)"))
    }

    /// A scanned page has no characters of its own: with OCR (ingest's default settings)
    /// a quote of its recognised text is marked where the words are on the scan, the
    /// right way up or upside down (cardinal.pdf's third page is turned by a half).
    #[test]
    fn a_quote_from_a_scanned_page_is_marked_on_the_scan() {
        let ocr = Ocr::default();
        let quote = ["The LinnSequencer is a state-of-the-art composition and performance tool for the professional musician.".to_owned()];
        let draw = |name: &str, page: u32, ocr: Option<&Ocr>| {
            render_page(
                test_pdfium(),
                &test_doc(name),
                page,
                IMAGE_WIDTH,
                IMAGE_MAX_HEIGHT,
                ocr,
            )
            .unwrap()
        };

        let upright = draw("linn.pdf", 1, Some(&ocr));
        let boxes = mark(&upright, &quote);
        assert!(!boxes.is_empty(), "the quote is found on the scan");
        for b in &boxes {
            assert!(b.x >= 0.0 && b.x + b.w <= upright.width, "{b:?}");
            assert!(
                b.y >= 0.0 && b.y + b.h < upright.height / 2.0,
                "the opening paragraph is in the upper half: {b:?}"
            );
        }

        let turned = draw("cardinal.pdf", 3, Some(&ocr));
        let boxes = mark(&turned, &quote);
        assert!(!boxes.is_empty(), "found on the page turned upside down");
        for b in &boxes {
            assert!(
                b.y > turned.height / 2.0 && b.y + b.h <= turned.height,
                "upside down, the opening paragraph is in the lower half: {b:?}"
            );
        }

        let without = draw("linn.pdf", 1, None);
        assert!(mark(&without, &quote).is_empty(), "no OCR, nothing to mark");
    }

    /// Width and height from a PNG's header.
    fn png_size(png: &[u8]) -> (u32, u32) {
        let at = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
        (at(16), at(20))
    }

    #[test]
    fn page_images_stay_within_bounds_whatever_the_page_shape() {
        let pdfium = test_pdfium();

        let draw = |pdf: &[u8]| {
            render_page(pdfium, pdf, 1, IMAGE_WIDTH, IMAGE_MAX_HEIGHT, None)
                .unwrap()
                .png
        };
        let page = draw(&blank_pdf(550.0, 778.0));
        assert_eq!(
            png_size(&page),
            (1100, 1556),
            "an ordinary page, at full width"
        );

        // Ten times as tall as wide: at full width, 1100 by 11,000 pixels. (PDF's largest
        // page, 14,400 points tall and 1 wide, would be 1100 by 15.8 million.)
        let strip = draw(&blank_pdf(200.0, 2000.0));
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
        use lectern_pdfium::testing::fruit_prices;
        let bytes = fruit_prices();
        let marked = |quote: &str| {
            let page = render_page(
                test_pdfium(),
                &bytes,
                1,
                IMAGE_WIDTH,
                IMAGE_MAX_HEIGHT,
                None,
            )
            .unwrap();
            assert_eq!(page.height, 792.0);
            mark(&page, &[quote.to_owned()])
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

    /// What a worker answers is what the server reads back: the page, or the same error.
    #[test]
    fn a_worker_answer_reads_back_as_the_page_or_its_error() {
        let r = |x: f32| Rect {
            x,
            y: 20.25,
            w: 5.5,
            h: 10.0,
        };
        let drawn = RenderedPage {
            width: 612.0,
            height: 792.0,
            chars: vec![
                (Some('a'), Some(r(1.0))),
                (None, Some(r(7.125))),
                (Some('\n'), None),
            ],
            png: [PNG_SIGNATURE, &b"\n rest of the image \n"[..]].concat(),
        };
        let answer = |outcome: Result<RenderedPage, Failure>| {
            let mut out = Vec::new();
            write_answer(&mut out, &outcome).unwrap();
            read_answer(&out)
        };
        assert_eq!(answer(Ok(drawn.clone())).unwrap(), drawn);

        let missing = answer(Err(Error::NotFound("no page 9".into()).into())).unwrap_err();
        assert!(
            matches!(&missing, Error::NotFound(m) if m == "no page 9"),
            "{missing:?}"
        );
        let damaged = answer(Err(Error::Invalid("bad xref".into()).into())).unwrap_err();
        assert!(
            matches!(&damaged, Error::Invalid(m) if m == "bad xref"),
            "{damaged:?}"
        );

        let garbage: [&[u8]; 3] = [
            b"",
            b"{\"Ok\":",
            b"{\"Ok\":{\"width\":1,\"height\":1,\"chars\":[]}}\nGIF89a",
        ];
        for garbage in garbage {
            let e = read_answer(garbage).unwrap_err();
            assert!(matches!(e, Error::Internal { .. }), "{e:?}");
        }
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
