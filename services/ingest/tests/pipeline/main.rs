//! The ingest pipeline end to end on real components: real PDFs, HTML, Markdown and DOCX
//! files, the real embedding model, the embedded Qdrant engine, and SQLite and
//! PostgreSQL. Bad input fails its own document only; crashes and new versions leave
//! exactly one copy of every chunk.

use std::path::PathBuf;
use std::time::Duration;

use lectern_core::{SearchMode, SearchRequest, WorkspaceScope};
use lectern_ingest::pipeline::{Ingestor, Outcome, Stage, Submitted};
use lectern_runtime::{Context, Settings};
use lectern_search::SearchAdapters;
use lectern_store::testing::{TestClock, TestDatabase};

struct Env {
    ctx: std::sync::Arc<Context>,
    search: SearchAdapters,
    ingestor: Ingestor,
    _data: tempfile::TempDir,
    _db: TestDatabase,
}

async fn env(db: TestDatabase) -> Env {
    let data = tempfile::tempdir().unwrap();
    let mut settings = Settings::default();
    settings.data_dir = data.path().to_owned();
    settings.database.url = Some(db.url.clone().into());
    let model = lectern_embed::testing::default_options();
    settings.embedding.model_dir = model.model_dir;
    settings.embedding.ort_dylib = model.ort_dylib;
    let pdfium = lectern_core::default_cache_dir().join("assets/pdfium/libpdfium.so");
    settings.ingest.pdfium_lib = std::env::var_os("LECTERN_PDFIUM_LIB")
        .map(PathBuf::from)
        .or(Some(pdfium));
    // Folder sources of the tests live in temporary folders.
    settings.ingest.source_roots = vec![std::env::temp_dir()];
    let ctx = Context::open(settings, true).await.unwrap();
    let search = SearchAdapters::open(&ctx.settings).await.unwrap();
    let ingestor = Ingestor::new(&ctx, &search).unwrap();
    Env {
        ctx,
        search,
        ingestor,
        _data: data,
        _db: db,
    }
}

fn dev_pdf(name: &str) -> Vec<u8> {
    let dir = std::env::var_os("LECTERN_DEV_QA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| lectern_core::default_cache_dir().join("dev-qa"));
    std::fs::read(dir.join(name))
        .unwrap_or_else(|e| panic!("{name}: {e} (run scripts/fetch-dev-qa.sh)"))
}

impl Env {
    async fn workspace(&self, name: &str) -> uuid::Uuid {
        self.ctx
            .store
            .create_workspace(name, None)
            .await
            .unwrap()
            .id
    }

    /// The index's own search, the question embedded by the real model.
    async fn search(
        &self,
        scope: &WorkspaceScope,
        text: &str,
        mode: SearchMode,
        limit: usize,
        documents: Option<Vec<uuid::Uuid>>,
    ) -> Vec<lectern_core::ScoredChunk> {
        let dense = self
            .search
            .embedder
            .embed(&[text.to_owned()])
            .unwrap()
            .remove(0);
        let request = SearchRequest {
            text: text.into(),
            dense,
            limit,
            mode,
            documents,
        };
        self.search.index.search(scope, &request).await.unwrap()
    }
}

macro_rules! on_both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(env(TestDatabase::sqlite()).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                ($body)(env(TestDatabase::postgres().await).await).await;
            }
        }
    };
}

const MARKDOWN: &str = "# Travel policy\n\n## Trains\n\nSecond class for trips under four hours.\n\n## Hotels\n\nBook through the travel desk; the nightly cap is 140 euros.\n";
const HTML: &str = "<html><head><title>Leave</title><script>var secret = 1;</script></head><body><main><h1>Annual leave</h1><p>Staff get twenty-five days of paid leave every year.</p></main></body></html>";

fn docx() -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut zip = zip::ZipWriter::new(&mut buf);
    zip.start_file(
        "word/document.xml",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    write!(zip, r#"<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>Expenses</w:t></w:r></w:p><w:p><w:r><w:t>Receipts are needed for every item above twenty euros.</w:t></w:r></w:p></w:body></w:document>"#).unwrap();
    zip.finish().unwrap();
    buf.into_inner()
}

on_both_backends!(
    a_mixed_upload_indexes_the_good_and_explains_the_bad,
    |e: Env| async move {
        // Move all of `e` in (closures capture only the fields they use): its temporary
        // data dir and database must live until the test ends.
        let e = e;
        let ws = e.workspace("Handbook").await;
        let uploads: Vec<(&str, Vec<u8>)> = vec![
            ("sample-sigconf.pdf", dev_pdf("sample-sigconf.pdf")),
            ("travel.md", MARKDOWN.into()),
            ("leave.html", HTML.into()),
            ("expenses.docx", docx()),
            ("rates.html", rates_html().into_bytes()),
            ("empty.txt", Vec::new()),
            ("fake.pdf", b"this is not a PDF at all".to_vec()),
            ("../../etc/passwd", b"root:x:0:0".to_vec()),
            ("truncated.pdf", dev_pdf("auguide4-2.pdf")[..4000].to_vec()),
        ];
        let mut submitted = Vec::new();
        for (name, bytes) in uploads {
            submitted.push((name, e.ingestor.submit(ws, name, bytes).await.unwrap()));
        }
        // Each file went through a temporary file: placed, or removed when refused.
        let incoming = e.ctx.settings.originals_dir().join(".incoming");
        assert_eq!(
            std::fs::read_dir(&incoming).unwrap().count(),
            0,
            "nothing left in {}",
            incoming.display()
        );
        let processed = e.ingestor.run_until_idle(|_| {}).await.unwrap();
        let docs = e.ctx.store.list_documents(ws).await.unwrap();
        let by_name = |n: &str| {
            docs.iter()
                .find(|d| d.file_name == n)
                .unwrap_or_else(|| panic!("{n} not listed"))
        };

        for good in [
            "sample-sigconf.pdf",
            "travel.md",
            "leave.html",
            "expenses.docx",
        ] {
            let d = by_name(good);
            assert_eq!(d.status, "ready", "{good}: {:?}", d.error_message);
            let rows = e.ctx.store.chunks_of(d.id, 1).await.unwrap();
            assert!(!rows.is_empty());
            assert_eq!(
                e.search.index.count_document(ws, d.id, None).await.unwrap(),
                rows.len(),
                "{good}: one point per chunk row"
            );
        }
        assert_eq!(by_name("sample-sigconf.pdf").pages, Some(6));
        for (bad, words) in [
            ("empty.txt", "empty"),
            ("fake.pdf", "does not look like"),
            ("../../etc/passwd", "path components"),
            ("truncated.pdf", "damaged"),
        ] {
            let d = by_name(bad);
            assert_eq!(d.status, "failed", "{bad}");
            let reason = d.error_message.clone().unwrap_or_default();
            assert!(reason.contains(words), "{bad}: {reason}");
        }
        assert!(
            processed
                .iter()
                .all(|p| !matches!(p.outcome, Outcome::WillRetry { .. }))
        );
        assert!(matches!(submitted[5].1, Submitted::Rejected { .. }));

        // Pages and spans of the two-column paper's chunks point at the right place.
        let paper = by_name("sample-sigconf.pdf");
        let scope = WorkspaceScope::local_cli(vec![ws]).unwrap();
        let query = "Which typeface family does the acmart document class require?";
        let hits = e.search(&scope, query, SearchMode::Hybrid, 5, None).await;
        let hit = hits
            .iter()
            .find(|h| h.chunk.text.contains("Libertine"))
            .expect("the passage is retrieved");
        assert_eq!(hit.chunk.document_id, paper.id);
        assert!(
            hit.chunk.pages.start <= 2 && 2 <= hit.chunk.pages.end,
            "{:?}",
            hit.chunk.pages
        );
        let rows = e.ctx.store.chunks_of(paper.id, 1).await.unwrap();
        let row = &rows[hit.chunk.chunk_index as usize];
        assert_eq!(
            (row.char_start as usize, row.char_end as usize),
            (hit.chunk.span.start, hit.chunk.span.end)
        );

        // The script's text never reached the index.
        let html = by_name("leave.html");
        let hits = e
            .search(
                &scope,
                "secret",
                SearchMode::Sparse,
                20,
                Some(vec![html.id]),
            )
            .await;
        assert!(hits.is_empty());

        // Rows far down a long table reach the index with the table's header beside them.
        let rates = by_name("rates.html");
        assert_eq!(rates.status, "ready", "{:?}", rates.error_message);
        let hits = e
            .search(
                &scope,
                "Grade 38",
                SearchMode::Sparse,
                3,
                Some(vec![rates.id]),
            )
            .await;
        let hit = hits
            .iter()
            .find(|h| h.chunk.text.contains("| Grade 38 |"))
            .expect("the row is retrieved");
        assert_eq!(
            hit.chunk.table_header.as_deref(),
            Some("| Grade | Daily rate |\n| --- | --- |")
        );
    }
);

/// A page with a 40-row table: long enough to be cut into several chunks.
fn rates_html() -> String {
    let rows: String = (1..=40)
        .map(|i| {
            format!(
                "<tr><td>Grade {i}</td><td>{} EUR per day</td></tr>",
                100 + 7 * i
            )
        })
        .collect();
    format!("<h1>Travel rates</h1><table><tr><th>Grade</th><th>Daily rate</th></tr>{rows}</table>")
}

on_both_backends!(
    one_file_uploaded_four_times_at_once_becomes_one_document,
    |e: Env| async move {
        let e = e;
        let ws = e.workspace("Policies").await;
        let uploads = (0..4).map(|_| e.ingestor.submit(ws, "travel.md", MARKDOWN.into()));
        let outcomes: Vec<Submitted> = futures::future::try_join_all(uploads).await.unwrap();
        let queued = outcomes
            .iter()
            .filter(|o| matches!(o, Submitted::Queued { .. }))
            .count();
        let unchanged = outcomes
            .iter()
            .filter(|o| matches!(o, Submitted::Unchanged { .. }))
            .count();
        assert_eq!((queued, unchanged), (1, 3), "{outcomes:?}");
        let ids: std::collections::HashSet<_> = outcomes.iter().map(|o| o.document().id).collect();
        assert_eq!(ids.len(), 1, "one document: {outcomes:?}");
    }
);

on_both_backends!(
    unchanged_files_are_skipped_and_changed_ones_become_versions,
    |e: Env| async move {
        // Move all of `e` in (closures capture only the fields they use): its temporary
        // data dir and database must live until the test ends.
        let e = e;
        let ws = e.workspace("Policies").await;
        let first = e
            .ingestor
            .submit(ws, "travel.md", MARKDOWN.into())
            .await
            .unwrap();
        e.ingestor.run_until_idle(|_| {}).await.unwrap();
        let doc = first.document().clone();
        let again = e
            .ingestor
            .submit(ws, "travel.md", MARKDOWN.into())
            .await
            .unwrap();
        assert!(matches!(again, Submitted::Unchanged { .. }));
        assert_eq!(again.document().id, doc.id);

        let changed = MARKDOWN.replace("140 euros", "160 euros");
        let v2 = e
            .ingestor
            .submit(ws, "travel.md", changed.into_bytes())
            .await
            .unwrap();
        assert!(matches!(v2, Submitted::NewVersion { .. }));
        assert_eq!(v2.document().id, doc.id);
        assert_eq!(v2.document().current_version, 2);
        // Until the new version is indexed, the old one stays searchable.
        assert!(
            e.search
                .index
                .count_document(ws, doc.id, Some(1))
                .await
                .unwrap()
                > 0
        );
        e.ingestor.run_until_idle(|_| {}).await.unwrap();
        assert_eq!(
            e.search
                .index
                .count_document(ws, doc.id, Some(1))
                .await
                .unwrap(),
            0
        );
        let v2_rows = e.ctx.store.chunks_of(doc.id, 2).await.unwrap();
        assert_eq!(
            e.search
                .index
                .count_document(ws, doc.id, None)
                .await
                .unwrap(),
            v2_rows.len()
        );
        assert!(e.ctx.store.chunks_of(doc.id, 1).await.unwrap().is_empty());
        assert_eq!(
            e.ctx.store.document(doc.id).await.unwrap().unwrap().status,
            "ready"
        );

        e.ingestor
            .delete(&e.ctx.store.document(doc.id).await.unwrap().unwrap())
            .await
            .unwrap();
        assert_eq!(
            e.search
                .index
                .count_document(ws, doc.id, None)
                .await
                .unwrap(),
            0
        );
        assert!(e.ctx.store.document(doc.id).await.unwrap().is_none());
        assert!(e.ctx.store.chunks_of(doc.id, 2).await.unwrap().is_empty());
        assert!(
            !e.ctx
                .settings
                .originals_dir()
                .join(doc.id.to_string())
                .exists()
        );
    }
);

on_both_backends!(
    a_worker_killed_mid_job_is_finished_by_another_with_no_duplicates,
    |e: Env| async move {
        // Move all of `e` in (closures capture only the fields they use): its temporary
        // data dir and database must live until the test ends.
        let e = e;
        let ws = e.workspace("Papers").await;
        // Both workers read the time from one clock that the test moves.
        let clock = TestClock::new();
        let clocked = e.ctx.store.clone().with_clock(&clock);
        let survivor = Ingestor::new(&e.ctx, &e.search)
            .unwrap()
            .with_store(clocked.clone());
        for stage in [Stage::Claimed, Stage::Parsed, Stage::Upserted] {
            let mut ingestor = Ingestor::new(&e.ctx, &e.search)
                .unwrap()
                .with_store(clocked.clone());
            ingestor.lease = Duration::from_secs(300);
            let name = format!("paper-{stage:?}.pdf");
            let mut bytes = dev_pdf("sample-sigconf.pdf");
            bytes.extend_from_slice(format!("\n% {name}\n").as_bytes()); // distinct content, same pages
            let doc = survivor
                .submit(ws, &name, bytes)
                .await
                .unwrap()
                .document()
                .clone();
            *ingestor.crash_after.lock().unwrap() = Some(stage);
            assert!(
                ingestor.process_next().await.is_err(),
                "the simulated crash at {stage:?}"
            );
            // The job is still leased to the dead worker: nobody else can take it yet.
            assert!(survivor.process_next().await.unwrap().is_none());
            clock.advance(Duration::from_secs(301));
            let done = survivor
                .process_next()
                .await
                .unwrap()
                .expect("the expired lease is claimed again");
            assert!(
                matches!(done.outcome, Outcome::Indexed { .. }),
                "{stage:?}: {:?}",
                done.outcome
            );
            let rows = e.ctx.store.chunks_of(doc.id, 1).await.unwrap();
            assert_eq!(
                e.search
                    .index
                    .count_document(ws, doc.id, None)
                    .await
                    .unwrap(),
                rows.len(),
                "{stage:?}: no duplicate, no missing chunk"
            );
            let job = e.ctx.store.job(done.job_id).await.unwrap().unwrap();
            assert_eq!((job.state.as_str(), job.attempts), ("done", 2));
        }
    }
);

mod sources;
