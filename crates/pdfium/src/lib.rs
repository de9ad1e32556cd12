//! PDFium, bound once per process from the library file the settings name. Ingest reads
//! PDFs with it and the web app draws cited pages with it; in `lectern serve` both run
//! in one process and must share one binding, so the binding lives here, in the one
//! crate both depend on, and neither depends on the other.

use std::path::Path;
use std::sync::{Mutex, OnceLock};

pub use pdfium_render;
use pdfium_render::prelude::Pdfium;

pub mod ocr;
#[cfg(feature = "testing")]
pub mod testing;

/// The process's PDFium, bound on first use from `library`. A library that cannot be
/// loaded is an error naming it, every time it is asked for (the first path wins).
pub fn pdfium(library: &Path) -> Result<&'static Pdfium, String> {
    static PDFIUM: OnceLock<Result<Pdfium, String>> = OnceLock::new();
    static BINDING: Mutex<()> = Mutex::new(());
    let _guard = BINDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    PDFIUM
        .get_or_init(|| {
            Pdfium::bind_to_library(library)
                .map(Pdfium::new)
                .map_err(|e| format!("cannot load PDFium from {}: {e}", library.display()))
        })
        .as_ref()
        .map_err(Clone::clone)
}
