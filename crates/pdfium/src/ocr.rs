//! OCR of pages that have no text layer (scans, and the scanned pages of mixed PDFs),
//! with Tesseract (chosen by measurement: docs/EVALUATION.md, "OCR").
//!
//! A page is drawn with PDFium at `dpi` and handed to Tesseract's command-line program as
//! a greyscale image on its standard input; its TSV answer gives each word with its box.
//! The words become the page's text and, for the web app's citation panel, characters
//! with boxes in page points, exactly as PDFium gives them for a text page. Ingest and the
//! web app call the same [`recognise`] with the same settings, so the text a citation
//! quotes is the text the page view finds again.
//!
//! Tesseract runs as a child of the calling process: in the server that is a confined
//! worker (no sockets, limited memory), and the child inherits the confinement; it is
//! killed when its time is up, and with its worker's process group when the worker's is.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pdfium_render::prelude::*;
use serde::{Deserialize, Serialize};

/// A text layer with fewer letters and digits than this is not a text layer worth
/// keeping (a scan with a stamped page number, say): the page is read by OCR.
pub const MIN_TEXT: usize = 20;
/// The longer side of a page image, in pixels at most: a poster-sized page is read at a
/// lower resolution rather than drawn into gigabytes.
const MAX_SIDE: f32 = 7000.0;
/// Words Tesseract is less sure of than this (0-100) are noise from pictures and rules.
const MIN_CONFIDENCE: f32 = 10.0;

/// How pages are recognised: the `[ocr]` settings. Ingest reads pages without a text
/// layer with them, and the web app finds a cited passage on such pages with the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ocr {
    /// Read pages without text by OCR. Off, or without Tesseract, such pages stay empty
    /// and the document says so.
    pub enabled: bool,
    /// Tesseract's language names (`eng`, `deu`, `fra`, `spa`, ...): each needs its
    /// language data (Debian: `tesseract-ocr-LANG`). A page is read with all of them.
    pub languages: Vec<String>,
    /// Tesseract's program: a path, or a name found on `PATH`.
    pub tesseract: PathBuf,
    /// The folder of Tesseract's `.traineddata` files; unset: Tesseract's own.
    pub tessdata_dir: Option<PathBuf>,
    /// Resolution pages are drawn at for recognition (150-600).
    pub dpi: u32,
    /// Most seconds one page may take.
    pub page_timeout_secs: u64,
}

impl Default for Ocr {
    fn default() -> Self {
        Self {
            enabled: true,
            languages: vec!["eng".into()],
            tesseract: PathBuf::from("tesseract"),
            tessdata_dir: None,
            dpi: 300,
            page_timeout_secs: 60,
        }
    }
}

impl Ocr {
    /// The files Tesseract reads outside the system's folders: its program, found as the
    /// system would (on `PATH` when it is a name), and its language data when set.
    pub fn paths(&self) -> Vec<PathBuf> {
        let program = if self.tesseract.components().count() > 1 {
            Some(self.tesseract.clone())
        } else {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|dir| dir.join(&self.tesseract))
                    .find(|p| p.is_file())
            })
        };
        program
            .into_iter()
            .chain(self.tessdata_dir.clone())
            .collect()
    }

    /// The settings a worker gets as an argument (JSON; `null` when OCR is off) read back:
    /// `None` when the argument is not settings.
    pub fn from_arg(arg: &OsStr) -> Option<Option<Ocr>> {
        arg.to_str().and_then(|s| serde_json::from_str(s).ok())
    }

    /// [`Ocr::paths`] of the settings in a worker's argument; none when OCR is off.
    pub fn paths_in_arg(arg: &OsStr) -> Vec<PathBuf> {
        Self::from_arg(arg)
            .flatten()
            .map(|o| o.paths())
            .unwrap_or_default()
    }

    /// These settings when OCR is on; `None` when it is off.
    pub fn engine(&self) -> Option<Ocr> {
        self.enabled.then(|| self.clone())
    }
}

/// Why a page could not be recognised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcrError {
    /// Tesseract is not installed (or not where the settings say).
    #[error("OCR needs Tesseract, which is not installed ({0})")]
    Missing(String),
    #[error("OCR of page {page} failed: {why}")]
    Failed { page: u32, why: String },
}

/// A recognised word, its box in page points from the top left.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Word {
    pub text: String,
    /// Tesseract's block, paragraph and line numbers: words of one line share them.
    pub line: (u32, u32, u32),
    /// `[x, y, width, height]`.
    pub rect: [f32; 4],
}

/// Letters and digits in `text`: fewer than [`MIN_TEXT`] means the page needs OCR.
pub fn alphanumerics(text: &str) -> usize {
    text.chars().filter(|c| c.is_alphanumeric()).count()
}

/// Whether a page whose text layer reads `text` is to be read by OCR instead.
pub fn needs_ocr(text: &str) -> bool {
    alphanumerics(text) < MIN_TEXT
}

/// Checks that the program runs and has every language, before any page needs it.
pub fn check(ocr: &Ocr) -> Result<(), OcrError> {
    let mut command = Command::new(&ocr.tesseract);
    if let Some(dir) = &ocr.tessdata_dir {
        command.arg("--tessdata-dir").arg(dir);
    }
    let output = command
        .arg("--list-langs")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| OcrError::Missing(format!("{}: {e}", ocr.tesseract.display())))?;
    // Tesseract 4 listed them on standard error, 5 on standard output.
    let listed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let installed: Vec<&str> = listed.lines().map(str::trim).collect();
    let missing: Vec<&str> = ocr
        .languages
        .iter()
        .map(String::as_str)
        .filter(|l| !installed.contains(l))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(OcrError::Missing(format!(
            "no language data for {}; install tesseract-ocr-{} or set ocr.tessdata_dir",
            missing.join(", "),
            missing[0]
        )))
    }
}

/// A page drawn in shades of grey: one byte per pixel, rows top to bottom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grey {
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

impl Grey {
    /// As a binary PGM image, which Tesseract reads from its standard input.
    pub fn pgm(&self) -> Vec<u8> {
        let mut out = format!("P5\n{} {}\n255\n", self.width, self.height).into_bytes();
        out.extend_from_slice(&self.pixels);
        out
    }
}

/// Draws `page` at `dpi` (at most [`MAX_SIDE`] pixels on its longer side), white where
/// nothing is drawn.
pub fn draw_grey(page: &PdfPage, dpi: u32) -> Result<Grey, String> {
    let (width, height) = (page.width().value, page.height().value);
    if !(width.is_finite() && height.is_finite() && width > 0.0 && height > 0.0) {
        return Err("the page has no size".into());
    }
    let scale = (dpi.clamp(72, 1200) as f32 / 72.0).min(MAX_SIDE / width.max(height));
    let bitmap = page
        .render_with_config(
            &PdfRenderConfig::new()
                .set_target_width((width * scale).round().max(1.0) as i32)
                .set_maximum_height((height * scale).round().max(1.0) as i32),
        )
        .map_err(|e| format!("the page could not be drawn: {e}"))?;
    let (w, h) = (bitmap.width() as usize, bitmap.height() as usize);
    Ok(Grey {
        width: w,
        height: h,
        pixels: greyscale(&bitmap.as_rgba_bytes(), w * h),
    })
}

/// Reads page `number` (from 1, for messages) by OCR: its words in reading order.
pub fn recognise(ocr: &Ocr, page: &PdfPage, number: u32) -> Result<Vec<Word>, OcrError> {
    let failed = |why: String| OcrError::Failed { page: number, why };
    let image = draw_grey(page, ocr.dpi).map_err(failed)?;
    let pixels_per_point = image.width as f32 / page.width().value;
    let tsv = run_tesseract(ocr, &image.pgm(), (pixels_per_point * 72.0).round() as u32).map_err(
        |e| match e {
            RunError::Missing(why) => OcrError::Missing(why),
            RunError::Failed(why) => failed(why),
        },
    )?;
    Ok(words_from_tsv(&tsv, pixels_per_point))
}

/// The page's text from its words: a line's words joined by spaces, lines by a line
/// break, paragraphs by a blank line. With each character, the box it takes in its word
/// (the word's box cut evenly; none for the spaces and breaks between words).
pub fn lay_out(words: &[Word]) -> Vec<(char, Option<[f32; 4]>)> {
    let mut out = Vec::new();
    let mut last: Option<(u32, u32, u32)> = None;
    for word in words {
        if let Some((block, par, line)) = last {
            let sep: &[char] = if (block, par) != (word.line.0, word.line.1) {
                &['\n', '\n']
            } else if line != word.line.2 {
                &['\n']
            } else {
                &[' ']
            };
            out.extend(sep.iter().map(|&c| (c, None)));
        }
        last = Some(word.line);
        let n = word.text.chars().count().max(1) as f32;
        let [x, y, w, h] = word.rect;
        out.extend(
            word.text
                .chars()
                .enumerate()
                .map(|(i, c)| (c, Some([x + w * i as f32 / n, y, w / n, h]))),
        );
    }
    out
}

/// [`lay_out`]'s text alone.
pub fn text_of(words: &[Word]) -> String {
    lay_out(words).into_iter().map(|(c, _)| c).collect()
}

/// A PDF whose pages hold nothing but an image each, as a scanner makes them: each
/// `(width, height, image)` is a page `width` by `height` points with `image` stretched
/// over it. For measuring OCR on real pages drawn and wrapped so (the text PDFium reads
/// from the original page is what OCR should find), and for tests.
pub fn scanned_pdf(pages: &[(f32, f32, Grey)]) -> Vec<u8> {
    let mut objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        // The page tree, once the pages' object numbers are known.
        Vec::new(),
    ];
    let mut kids = Vec::new();
    for (width, height, image) in pages {
        let mut stream = format!(
            "<< /Type /XObject /Subtype /Image /Width {} /Height {} /ColorSpace /DeviceGray \
             /BitsPerComponent 8 /Length {} >>\nstream\n",
            image.width,
            image.height,
            image.pixels.len()
        )
        .into_bytes();
        stream.extend_from_slice(&image.pixels);
        stream.extend_from_slice(b"\nendstream");
        objects.push(stream);
        let picture = objects.len();
        let content = format!("q {width} 0 0 {height} 0 0 cm /Im0 Do Q\n");
        objects.push(
            format!(
                "<< /Length {} >>\nstream\n{content}endstream",
                content.len()
            )
            .into_bytes(),
        );
        let contents = objects.len();
        objects.push(
            format!(
                "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {width} {height}] \
                 /Resources << /XObject << /Im0 {picture} 0 R >> >> /Contents {contents} 0 R >>"
            )
            .into_bytes(),
        );
        kids.push(format!("{} 0 R", objects.len()));
    }
    objects[1] = format!(
        "<< /Type /Pages /Kids [{}] /Count {} >>",
        kids.join(" "),
        pages.len()
    )
    .into_bytes();
    let mut pdf = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", i + 1).as_bytes());
        pdf.extend_from_slice(object);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref = pdf.len();
    let size = objects.len() + 1;
    pdf.extend_from_slice(format!("xref\n0 {size}\n0000000000 65535 f \n").as_bytes());
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!("trailer\n<< /Size {size} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n").as_bytes(),
    );
    pdf
}

/// The first `pixels` RGBA pixels in grey: Rec. 601 luma over a white page.
fn greyscale(rgba: &[u8], pixels: usize) -> Vec<u8> {
    rgba.chunks_exact(4)
        .take(pixels)
        .map(|p| {
            let luma = (299 * p[0] as u32 + 587 * p[1] as u32 + 114 * p[2] as u32) / 1000;
            let alpha = p[3] as u32;
            ((luma * alpha + 255 * (255 - alpha)) / 255) as u8
        })
        .collect()
}

enum RunError {
    Missing(String),
    Failed(String),
}

/// Runs Tesseract on one image; its TSV answer.
fn run_tesseract(ocr: &Ocr, image: &[u8], dpi: u32) -> Result<String, RunError> {
    let mut command = Command::new(&ocr.tesseract);
    // Page segmentation 1: automatic, with orientation detection, so that a page scanned
    // upside down or sideways is read the right way up (boxes stay on the image as given).
    command.args(["stdin", "stdout", "--psm", "1", "--dpi", &dpi.to_string()]);
    if !ocr.languages.is_empty() {
        command.arg("-l").arg(ocr.languages.join("+"));
    }
    if let Some(dir) = &ocr.tessdata_dir {
        command.arg("--tessdata-dir").arg(dir);
    }
    command
        .arg("tsv")
        // One thread each: ingest already reads documents side by side.
        .env("OMP_THREAD_LIMIT", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            RunError::Missing(format!("{} not found", ocr.tesseract.display()))
        } else {
            RunError::Failed(format!("Tesseract could not start: {e}"))
        }
    })?;
    let mut stdin = child.stdin.take().expect("piped");
    let mut stdout = child.stdout.take().expect("piped");
    let mut stderr = child.stderr.take().expect("piped");
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || stdin.write_all(image));
        let reader = scope.spawn(move || {
            let mut tsv = String::new();
            stdout.read_to_string(&mut tsv).map(|_| tsv)
        });
        let errors = scope.spawn(move || {
            let mut said = Vec::new();
            let _ = (&mut stderr).take(4096).read_to_end(&mut said);
            String::from_utf8_lossy(&said).trim().to_owned()
        });
        let deadline = Instant::now() + Duration::from_secs(ocr.page_timeout_secs.max(1));
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(RunError::Failed(format!(
                        "it took longer than {} seconds",
                        ocr.page_timeout_secs
                    )));
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => break Err(RunError::Failed(format!("Tesseract was lost: {e}"))),
            }
        }?;
        // A broken pipe means Tesseract stopped reading: its status says why.
        let _ = writer.join();
        let tsv = reader.join().ok().and_then(Result::ok).unwrap_or_default();
        let said = errors.join().unwrap_or_default();
        if status.success() {
            Ok(tsv)
        } else {
            let said = said.lines().last().unwrap_or("no message");
            Err(RunError::Failed(format!(
                "Tesseract failed ({status}): {said}"
            )))
        }
    })
}

/// Tesseract's TSV (level, page, block, paragraph, line, word, left, top, width, height,
/// confidence, text): the words, their boxes scaled from pixels to points.
fn words_from_tsv(tsv: &str, pixels_per_point: f32) -> Vec<Word> {
    let mut words = Vec::new();
    for row in tsv.lines().skip(1) {
        let cols: Vec<&str> = row.splitn(12, '\t').collect();
        let [
            level,
            _,
            block,
            par,
            line,
            _,
            left,
            top,
            width,
            height,
            conf,
            text,
        ] = cols[..]
        else {
            continue;
        };
        let text = text.trim();
        if level != "5" || text.is_empty() {
            continue;
        }
        let number = |s: &str| s.trim().parse::<f32>().ok();
        let id = |s: &str| s.trim().parse::<u32>().ok();
        let (Some(left), Some(top), Some(width), Some(height), Some(conf)) = (
            number(left),
            number(top),
            number(width),
            number(height),
            number(conf),
        ) else {
            continue;
        };
        let (Some(block), Some(par), Some(line)) = (id(block), id(par), id(line)) else {
            continue;
        };
        if conf < MIN_CONFIDENCE {
            continue;
        }
        let s = pixels_per_point;
        words.push(Word {
            text: text.to_owned(),
            line: (block, par, line),
            rect: [left / s, top / s, width / s, height / s],
        });
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSV: &str = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext
1\t1\t0\t0\t0\t0\t0\t0\t2550\t3300\t-1\t
5\t1\t1\t1\t1\t1\t300\t400\t200\t50\t96.5\tHello
5\t1\t1\t1\t1\t2\t520\t400\t250\t50\t91.0\tworld,
5\t1\t1\t1\t2\t1\t300\t470\t100\t50\t88.0\tagain
5\t1\t1\t1\t2\t2\t420\t470\t30\t50\t3.0\t~
5\t1\t2\t1\t1\t1\t300\t700\t150\t50\t90.0\tNext
5\t1\t2\t1\t1\t2\t470\t700\t50\t50\t90.0\t \n";

    #[test]
    fn words_keep_their_lines_and_boxes_in_points() {
        // 300 dpi: 300 / 72 pixels per point.
        let words = words_from_tsv(TSV, 300.0 / 72.0);
        let texts: Vec<&str> = words.iter().map(|w| w.text.as_str()).collect();
        assert_eq!(
            texts,
            ["Hello", "world,", "again", "Next"],
            "noise and blanks are dropped"
        );
        assert_eq!(words[0].line, (1, 1, 1));
        assert_eq!(words[2].line, (1, 1, 2));
        let [x, y, w, h] = words[0].rect;
        assert!(
            (x - 72.0).abs() < 1e-3 && (y - 96.0).abs() < 1e-3,
            "{x} {y}"
        );
        assert!(
            (w - 48.0).abs() < 1e-3 && (h - 12.0).abs() < 1e-3,
            "{w} {h}"
        );
    }

    #[test]
    fn the_layout_breaks_lines_and_paragraphs_and_boxes_each_character() {
        let words = words_from_tsv(TSV, 1.0);
        assert_eq!(text_of(&words), "Hello world,\nagain\n\nNext");
        let laid = lay_out(&words);
        assert_eq!(laid.len(), text_of(&words).chars().count());
        // "Hello" is 200 wide from x = 300: five boxes of 40, left to right.
        let boxes: Vec<[f32; 4]> = laid[..5].iter().map(|(_, b)| b.unwrap()).collect();
        assert_eq!(boxes[0], [300.0, 400.0, 40.0, 50.0]);
        assert_eq!(boxes[4], [460.0, 400.0, 40.0, 50.0]);
        assert_eq!(laid[5], (' ', None), "the space between words has no box");
    }

    #[test]
    fn a_thin_text_layer_needs_ocr() {
        assert!(needs_ocr(""));
        assert!(needs_ocr("  Page 3 \n"));
        assert!(!needs_ocr(
            "A page of real text has many more letters than this."
        ));
    }

    #[test]
    fn the_image_is_greyscale_on_white() {
        let rgba = [0, 0, 0, 255, 255, 255, 255, 255, 0, 0, 0, 0];
        let grey = Grey {
            width: 3,
            height: 1,
            pixels: greyscale(&rgba, 3),
        };
        assert_eq!(grey.pgm(), b"P5\n3 1\n255\n\x00\xff\xff");
    }

    #[test]
    fn a_missing_program_is_said_as_such() {
        let ocr = Ocr {
            tesseract: PathBuf::from("/nonexistent/tesseract"),
            ..Ocr::default()
        };
        assert!(matches!(check(&ocr), Err(OcrError::Missing(_))));
    }
}
