//! `lectern eval ocr`: how much of a page's text OCR finds again. Real pages of text PDFs
//! are drawn in grey at the scan resolution and wrapped, each alone, in a PDF that holds
//! nothing but that image (a scan of the page, made the way a scanner makes one); the
//! scan then goes through ingest's own PDF parser with the configured OCR. The words
//! PDFium reads from the original page are the truth.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;
use lectern_eval::metrics::{quantile, word_overlap};
use lectern_ingest::parse::{Ocr, Parsers};
use lectern_pdfium::ocr::{alphanumerics, draw_grey, scanned_pdf};
use lectern_pdfium::pdfium_render::prelude::*;
use serde::Serialize;

/// A page is measured only when its text layer has this many letters and digits: a page
/// of text, not a figure or a blank.
const MIN_PAGE_TEXT: usize = 300;

#[derive(Debug, Clone, Serialize)]
pub struct OcrReport {
    /// Tesseract's own version line.
    pub engine: String,
    pub languages: Vec<String>,
    /// Resolution of the scans, and of OCR's drawing of them.
    pub scan_dpi: u32,
    pub ocr_dpi: u32,
    pub pages: usize,
    /// Words of the original pages, and of those found again.
    pub words: usize,
    pub found: usize,
    pub recall: f64,
    pub precision: f64,
    /// Seconds to read one scanned page through the parser, and pages per second.
    pub seconds_p50: f64,
    pub seconds_p90: f64,
    pub pages_per_second: f64,
    pub files: Vec<FileScore>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileScore {
    pub file: String,
    pub pages: Vec<u32>,
    pub recall: f64,
}

/// Measures OCR on `pages` pages spread over the PDFs in `dir` (in name order, the same
/// pages every run).
pub fn ocr(
    pdfium_lib: &Path,
    engine: &Ocr,
    dir: &Path,
    pages: usize,
    scan_dpi: u32,
) -> anyhow::Result<OcrReport> {
    lectern_pdfium::ocr::check(engine)?;
    let pdfium = lectern_pdfium::pdfium(pdfium_lib).map_err(anyhow::Error::msg)?;
    let parsers = Parsers {
        pdfium: Some(pdfium_lib.to_owned()),
        ocr: Some(engine.clone()),
        ..Parsers::default()
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("pdf")))
        .collect();
    files.sort();
    anyhow::ensure!(!files.is_empty(), "no PDFs in {}", dir.display());
    // Each file's pages of text (number and PDFium's text, the truth), read once; then
    // the pages shared out one at a time in turn, so that a short file's spare share goes
    // to the others.
    let mut text_pages: Vec<Vec<(u32, String)>> = Vec::new();
    for file in &files {
        let bytes = std::fs::read(file)?;
        let document = pdfium
            .load_pdf_from_byte_slice(&bytes, None)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        text_pages.push(
            document
                .pages()
                .iter()
                .enumerate()
                .filter_map(|(i, page)| Some((i as u32 + 1, page.text().ok()?.all())))
                .filter(|(_, text)| alphanumerics(text) >= MIN_PAGE_TEXT)
                .collect(),
        );
    }
    let mut quota = vec![0; files.len()];
    let mut left = pages;
    while left > 0 && quota.iter().zip(&text_pages).any(|(q, t)| *q < t.len()) {
        for (q, t) in quota.iter_mut().zip(&text_pages) {
            if left > 0 && *q < t.len() {
                *q += 1;
                left -= 1;
            }
        }
    }

    let (mut words, mut found, mut read_words) = (0, 0, 0);
    let mut seconds = Vec::new();
    let mut scores = Vec::new();
    for ((file, take), texts) in files.iter().zip(quota).zip(&text_pages) {
        if take == 0 {
            continue;
        }
        let bytes = std::fs::read(file)?;
        let document = pdfium
            .load_pdf_from_byte_slice(&bytes, None)
            .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?;
        // Its share of its pages of text spread evenly over it (each the middle of its
        // stretch, so that a few pages are not all openings and contents pages).
        let picked: Vec<&(u32, String)> = (0..take)
            .map(|k| &texts[(2 * k + 1) * texts.len() / (2 * take)])
            .collect();
        let (mut file_found, mut file_words) = (0, 0);
        for (number, truth) in &picked {
            let page = document.pages().get((*number - 1) as PdfPageIndex)?;
            let image = draw_grey(&page, scan_dpi).map_err(anyhow::Error::msg)?;
            let scan = scanned_pdf(&[(page.width().value, page.height().value, image)]);
            let started = Instant::now();
            let doc = lectern_core::DocumentParser::parse(&parsers, &scan, "application/pdf")
                .map_err(|e| anyhow::anyhow!("{} page {number}: {e}", file.display()))?;
            seconds.push(started.elapsed().as_secs_f64());
            anyhow::ensure!(
                doc.ocr_pages == [1],
                "{} page {number}: the scan was not read by OCR",
                file.display()
            );
            let (f, w, r) = word_overlap(truth, &doc.text);
            (file_found, file_words) = (file_found + f, file_words + w);
            read_words += r;
        }
        found += file_found;
        words += file_words;
        scores.push(FileScore {
            file: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            pages: picked.iter().map(|(n, _)| *n).collect(),
            recall: ratio(file_found, file_words),
        });
    }
    anyhow::ensure!(!seconds.is_empty(), "no page of text in {}", dir.display());
    let total: f64 = seconds.iter().sum();
    Ok(OcrReport {
        engine: engine_version(engine),
        languages: engine.languages.clone(),
        scan_dpi,
        ocr_dpi: engine.dpi,
        pages: seconds.len(),
        words,
        found,
        recall: ratio(found, words),
        precision: ratio(found, read_words),
        seconds_p50: quantile(&seconds, 0.5),
        seconds_p90: quantile(&seconds, 0.9),
        pages_per_second: seconds.len() as f64 / total,
        files: scores,
    })
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The first line of `tesseract --version`.
fn engine_version(engine: &Ocr) -> String {
    std::process::Command::new(&engine.tesseract)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            let all = [o.stdout, o.stderr].concat();
            String::from_utf8_lossy(&all)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| engine.tesseract.display().to_string())
}
