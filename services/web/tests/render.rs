//! PDF pages drawn in a worker process: the `lectern-web` binary, built beside this test,
//! as the server runs its own executable.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lectern_core::Error;
use lectern_runtime::worker::Isolation;
use lectern_web::render::{PageRenderer, RenderedPage, mark};

fn pdfium_library() -> PathBuf {
    let library = std::env::var_os("LECTERN_PDFIUM_LIB")
        .map(PathBuf::from)
        .unwrap_or_else(|| lectern_core::default_cache_dir().join("assets/pdfium/libpdfium.so"));
    assert!(
        library.is_file(),
        "{} missing (run scripts/fetch-assets.sh pdfium)",
        library.display()
    );
    library
}

fn dev_qa_pdf(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("LECTERN_DEV_QA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| lectern_core::default_cache_dir().join("dev-qa"));
    std::fs::read(dir.join(name))
        .unwrap_or_else(|e| panic!("{name}: {e} (run scripts/fetch-dev-qa.sh)"))
}

/// Pages drawn by `program` as the worker.
fn in_worker(program: PathBuf, timeout: Duration) -> PageRenderer {
    PageRenderer::new(
        Some(pdfium_library()),
        Some(Isolation {
            program,
            memory_mb: 1024,
        }),
        timeout,
    )
}

/// The `lectern-web` binary cargo built for these tests, beside their `deps/` folder. (Not
/// `env!("CARGO_BIN_EXE_lectern-web")`: the build's rustc wrapper is a POSIX shell script,
/// and a shell drops variables whose names hold a `-`.)
fn web_binary() -> PathBuf {
    let test = std::env::current_exe().unwrap();
    let binary = test
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/<profile>/deps")
        .join("lectern-web");
    assert!(binary.is_file(), "{} is not built", binary.display());
    binary
}

/// The web binary as a worker that makes `fault` on purpose: a script that switches the
/// tests' fault on and runs it (a worker keeps that one variable of its environment).
fn faulty_web_binary(dir: &Path, fault: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let script = dir.join(format!("lectern-web-{fault}"));
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nexport LECTERN_TEST_PARSER_FAULT={fault}\nexec '{}' \"$@\"\n",
            web_binary().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Width and height from a PNG's header.
fn png_size(png: &[u8]) -> (u32, u32) {
    let at = |i: usize| u32::from_be_bytes(png[i..i + 4].try_into().unwrap());
    (at(16), at(20))
}

/// A page drawn by a worker is the page drawn in the server: a PNG of the same size, and
/// the same characters and boxes, so a cited passage is marked at the same places. A
/// worker that crashes, hangs or tries the network fails its page with a reason, and the
/// server (this process) goes on drawing. One test, so that the scripts are written
/// before any worker starts (a script open for writing in a starting child cannot run).
#[tokio::test]
async fn a_worker_draws_pages_as_the_server_would_and_a_dead_worker_fails_only_its_page() {
    let dir = tempfile::tempdir().unwrap();
    let crashing = faulty_web_binary(dir.path(), "abort");
    let hanging = faulty_web_binary(dir.path(), "hang");
    let escaping = faulty_web_binary(dir.path(), "escape");
    let pdf = Arc::new(dev_qa_pdf("sample-sigconf.pdf"));
    let here = PageRenderer::new(Some(pdfium_library()), None, Duration::from_secs(30));
    let worker = in_worker(web_binary(), Duration::from_secs(30));

    for page in [1, 2] {
        let local: RenderedPage = here.draw(pdf.clone(), page).await.unwrap();
        let drawn = worker.draw(pdf.clone(), page).await.unwrap();
        assert!(drawn.png.starts_with(b"\x89PNG\r\n\x1a\n"), "page {page}");
        let (width, height) = png_size(&drawn.png);
        assert_eq!((width, height), png_size(&local.png), "page {page}");
        assert_eq!(width, 1100, "page {page}: at full width");
        let expected = 1100.0 * drawn.height / drawn.width;
        assert!(
            (height as f32 - expected).abs() <= 1.0,
            "page {page}: {width}x{height} for {}x{} points",
            drawn.width,
            drawn.height
        );
        assert_eq!(
            (drawn.width, drawn.height),
            (local.width, local.height),
            "page {page}"
        );
        assert!(
            drawn.chars.len() > 1000,
            "page {page}: {}",
            drawn.chars.len()
        );
        assert_eq!(
            drawn.chars, local.chars,
            "page {page}: characters and boxes"
        );

        // A passage of the page, as a citation quotes it.
        let quote: String = local.chars[300..700].iter().filter_map(|c| c.0).collect();
        let boxes = mark(&drawn, std::slice::from_ref(&quote));
        assert!(!boxes.is_empty(), "page {page}: {quote:?} not found");
        assert_eq!(boxes, mark(&local, &[quote]), "page {page}");
    }

    // The worker's own errors come back as they are.
    let missing = worker.draw(pdf.clone(), 99).await.unwrap_err();
    assert!(
        matches!(&missing, Error::NotFound(m) if m == "the document has 6 pages, not a page 99"),
        "{missing:?}"
    );

    let crashed = in_worker(crashing, Duration::from_secs(30))
        .draw(pdf.clone(), 1)
        .await
        .unwrap_err();
    assert!(matches!(crashed, Error::Invalid(_)), "{crashed:?}");
    assert!(
        crashed
            .to_string()
            .starts_with("the PDF made the page renderer crash (signal 6)"),
        "{crashed}"
    );

    let started = Instant::now();
    let hung = in_worker(hanging, Duration::from_secs(2))
        .draw(pdf.clone(), 1)
        .await
        .unwrap_err();
    assert_eq!(
        hung.to_string(),
        "drawing page 1 took longer than 2 seconds; the PDF may be damaged"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "killed on time"
    );

    let escaped = in_worker(escaping, Duration::from_secs(30))
        .draw(pdf.clone(), 1)
        .await
        .unwrap_err();
    assert_eq!(
        escaped.to_string(),
        lectern_runtime::worker::ESCAPE_REFUSED,
        "a page renderer has no network, writes no file, reads nothing of the server's, and cannot signal it"
    );

    // The server goes on: the next page is drawn.
    let again = worker.draw(pdf, 3).await.unwrap();
    assert!(again.png.starts_with(b"\x89PNG\r\n\x1a\n"));
}
