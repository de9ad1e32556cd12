//! Folder sources end to end on real files, the real embedding model, the embedded index,
//! and SQLite and PostgreSQL: a sync follows a folder's changes exactly (new, changed,
//! deleted and moved files, one point per chunk row), skips unchanged files fast, and a
//! sync cut short is finished by the next claim without duplicates.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use lectern_api::ingest::{CreateSource, SyncResult, UpdateSource};
use lectern_ingest::source::SyncOutcome;
use lectern_store::entity::document;

use super::*;

const TRAVEL: &str = "# Travel policy\n\n## Trains\n\nSecond class for trips under four hours; first class above.\n\n## Hotels\n\nBook through the travel desk; the nightly cap is 140 euros.\n";
const TRAVEL_V2: &str = "# Travel policy\n\n## Trains\n\nAll train journeys are booked in second class, however long they take.\n\n## Hotels\n\nBook through the travel desk; the nightly cap is 160 euros.\n";
const LEAVE: &str = "# Annual leave\n\nStaff get twenty-five days of paid annual leave every year, and carry over five.\n";
const EXPENSES: &str = "# Expenses\n\nReceipts are needed for every item above twenty euros; claims are paid monthly.\n";
const SECURITY: &str =
    "# Security\n\nLaptops lock after five idle minutes, and badges are worn at all times.\n";

fn write(folder: &Path, key: &str, text: &str) {
    let path = folder.join(key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn folder_source(folder: &Path, include: &[&str], exclude: &[&str]) -> CreateSource {
    CreateSource {
        kind: "folder".into(),
        name: None,
        settings: serde_json::json!({
            "path": folder.to_str().unwrap(),
            "include": include,
            "exclude": exclude,
        }),
        interval_secs: None,
    }
}

/// Runs the due sync, which must complete.
async fn sync(ingestor: &Ingestor) -> SyncResult {
    let synced = ingestor
        .process_next_sync()
        .await
        .unwrap()
        .expect("a sync is due");
    match synced.outcome {
        SyncOutcome::Done(result) => result,
        other => panic!("the sync did not complete: {other:?}"),
    }
}

fn counts(r: &SyncResult) -> [u64; 6] {
    [
        r.added,
        r.changed,
        r.renamed,
        r.deleted,
        r.unchanged,
        r.failed,
    ]
}

async fn documents_by_key(e: &Env, source: uuid::Uuid) -> HashMap<String, document::Model> {
    e.ctx
        .store
        .source_documents(source)
        .await
        .unwrap()
        .into_iter()
        .map(|d| (d.source_key.clone().unwrap(), d))
        .collect()
}

/// Every document of the workspace ready, its current version's chunk rows as many as
/// its points (no duplicate, no older version left), and no point of anything else.
async fn assert_consistent(e: &Env, ws: uuid::Uuid) {
    let docs = e.ctx.store.list_documents(ws).await.unwrap();
    let mut rows = 0;
    for d in &docs {
        assert_eq!(d.status, "ready", "{}: {:?}", d.file_name, d.error_message);
        let chunks = e
            .ctx
            .store
            .chunks_of(d.id, d.current_version)
            .await
            .unwrap();
        assert!(!chunks.is_empty(), "{}", d.file_name);
        assert_eq!(
            e.search.index.count_document(ws, d.id, None).await.unwrap(),
            chunks.len(),
            "{}: one point per chunk row of the current version",
            d.file_name
        );
        rows += chunks.len();
    }
    assert_eq!(e.search.index.count_points(Some(ws)).await.unwrap(), rows);
}

on_both_backends!(
    a_folder_sync_follows_new_changed_deleted_and_moved_files_exactly,
    |e: Env| async move {
        let e = e;
        let ws = e.workspace("Handbook").await;
        let folder = tempfile::tempdir().unwrap();
        let f = folder.path();
        write(f, "travel.md", TRAVEL);
        write(f, "leave.md", LEAVE);
        write(f, "policies/expenses.md", EXPENSES);
        write(
            f,
            "drafts/wip.md",
            "# Work in progress\n\nNot for anyone's eyes yet.\n",
        );
        write(f, "scan.tmp", "temporary");
        write(f, ".hidden.md", "# Hidden\n\nNever read.\n");
        let source = e
            .ingestor
            .add_source(ws, &folder_source(f, &["*.md"], &["drafts/**"]))
            .await
            .unwrap();
        assert_eq!(source.name, f.file_name().unwrap().to_str().unwrap());
        let first = sync(&e.ingestor).await;
        assert_eq!(counts(&first), [3, 0, 0, 0, 0, 0], "{first:?}");
        e.ingestor.run_until_idle(|_| {}).await.unwrap();
        let before = documents_by_key(&e, source.id).await;
        let mut keys: Vec<&str> = before.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["leave.md", "policies/expenses.md", "travel.md"]);
        assert_consistent(&e, ws).await;

        // One file changed, one added, one deleted, one moved to another folder.
        write(f, "travel.md", TRAVEL_V2);
        write(f, "policies/security.md", SECURITY);
        std::fs::remove_file(f.join("leave.md")).unwrap();
        std::fs::create_dir(f.join("finance")).unwrap();
        std::fs::rename(
            f.join("policies/expenses.md"),
            f.join("finance/expenses-2027.md"),
        )
        .unwrap();
        e.ctx.store.request_sync(source.id).await.unwrap();
        let second = sync(&e.ingestor).await;
        assert_eq!(counts(&second), [1, 1, 1, 1, 0, 0], "{second:?}");
        let processed = e.ingestor.run_until_idle(|_| {}).await.unwrap();
        assert_eq!(
            processed.len(),
            2,
            "only the new and the changed file are read"
        );

        let after = documents_by_key(&e, source.id).await;
        let mut keys: Vec<&str> = after.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "finance/expenses-2027.md",
                "policies/security.md",
                "travel.md"
            ]
        );
        let moved = &after["finance/expenses-2027.md"];
        let was = &before["policies/expenses.md"];
        assert_eq!(moved.id, was.id, "a move keeps the document");
        assert_eq!(moved.current_version, 1, "and embeds nothing again");
        assert_eq!(moved.file_name, "expenses-2027.md");
        assert_eq!(moved.title, "expenses 2027");
        assert_eq!(after["travel.md"].id, before["travel.md"].id);
        assert_eq!(after["travel.md"].current_version, 2);
        assert!(
            e.ctx
                .store
                .document(before["leave.md"].id)
                .await
                .unwrap()
                .is_none()
        );
        assert_consistent(&e, ws).await;

        // Search sees exactly the folder as it is now.
        let scope = WorkspaceScope::local_cli(vec![ws]).unwrap();
        let hits = e
            .search(
                &scope,
                "second class however long",
                SearchMode::Hybrid,
                10,
                None,
            )
            .await;
        assert!(
            hits.iter()
                .any(|h| h.chunk.text.contains("however long they take")),
            "the changed text is found"
        );
        let everything = e
            .search(
                &scope,
                "travel leave expenses security",
                SearchMode::Hybrid,
                50,
                None,
            )
            .await;
        assert!(
            everything
                .iter()
                .all(|h| !h.chunk.text.contains("under four hours")),
            "the old version of the changed file is gone"
        );
        assert!(
            everything
                .iter()
                .all(|h| h.chunk.document_id != before["leave.md"].id),
            "the deleted file is gone"
        );
        assert!(
            everything
                .iter()
                .any(|h| h.chunk.document_id == moved.id && h.chunk.text.contains("Receipts")),
            "the moved file is still found"
        );

        // Nothing changed: nothing to do.
        e.ctx.store.request_sync(source.id).await.unwrap();
        let third = sync(&e.ingestor).await;
        assert_eq!(counts(&third), [0, 0, 0, 0, 3, 0], "{third:?}");
        assert!(e.ingestor.run_until_idle(|_| {}).await.unwrap().is_empty());
        let source = e.ctx.store.source(source.id).await.unwrap().unwrap();
        assert_eq!(source.sync_state, "idle");
        assert!(source.last_result.is_some() && source.last_error.is_none());

        // A folder that lists empty (an unmounted disk, more likely than not) deletes
        // nothing: the sync fails with the reason.
        let aside = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(folder.path()).unwrap() {
            let entry = entry.unwrap();
            std::fs::rename(entry.path(), aside.path().join(entry.file_name())).unwrap();
        }
        e.ctx.store.request_sync(source.id).await.unwrap();
        let synced = e.ingestor.process_next_sync().await.unwrap().unwrap();
        match &synced.outcome {
            SyncOutcome::Failed { reason } => assert!(reason.contains("mounted"), "{reason}"),
            other => panic!("an empty folder's sync: {other:?}"),
        }
        assert_eq!(documents_by_key(&e, source.id).await.len(), 3);
        assert_consistent(&e, ws).await;

        // Removing the source removes its documents, from the index too.
        let source = e.ctx.store.source(source.id).await.unwrap().unwrap();
        assert!(
            source
                .last_error
                .as_deref()
                .is_some_and(|r| r.contains("mounted"))
        );
        assert_eq!(e.ingestor.remove_source(&source).await.unwrap(), 3);
        assert!(e.ctx.store.source(source.id).await.unwrap().is_none());
        assert!(e.ctx.store.list_documents(ws).await.unwrap().is_empty());
        assert_eq!(e.search.index.count_points(Some(ws)).await.unwrap(), 0);
        // A sync still running when its source was removed adds nothing afterwards.
        let late = e
            .ctx
            .store
            .create_source_document(
                lectern_store::NewDocument {
                    id: uuid::Uuid::new_v4(),
                    workspace_id: ws,
                    title: "Late".into(),
                    file_name: "late.md".into(),
                    media_type: "text/markdown".into(),
                    sha256: "ab".repeat(32),
                    size_bytes: 4,
                    storage_key: "originals/late".into(),
                },
                &lectern_store::SourceFile {
                    source_id: source.id,
                    key: "late.md".into(),
                    mtime_ns: None,
                    etag: None,
                    last_modified: None,
                },
            )
            .await;
        assert!(
            matches!(late, Err(lectern_core::Error::Conflict(_))),
            "{late:?}"
        );
        assert!(e.ctx.store.list_documents(ws).await.unwrap().is_empty());
    }
);

on_both_backends!(
    uploads_and_sources_never_share_documents,
    |e: Env| async move {
        let e = e;
        let ws = e.workspace("Handbook").await;
        let folder = tempfile::tempdir().unwrap();
        write(folder.path(), "travel.md", TRAVEL);
        let source = e
            .ingestor
            .add_source(ws, &folder_source(folder.path(), &[], &[]))
            .await
            .unwrap();
        sync(&e.ingestor).await;
        // The same bytes under the same name, uploaded: a document of its own, which the
        // source's next sync leaves alone (and the source's file does not version it).
        let uploaded = e
            .ingestor
            .submit(ws, "travel.md", TRAVEL.into())
            .await
            .unwrap();
        assert!(matches!(uploaded, Submitted::Queued { .. }), "{uploaded:?}");
        assert_eq!(uploaded.document().source_id, None);
        write(folder.path(), "travel.md", TRAVEL_V2);
        e.ctx.store.request_sync(source.id).await.unwrap();
        assert_eq!(counts(&sync(&e.ingestor).await), [0, 1, 0, 0, 0, 0]);
        let upload = e
            .ctx
            .store
            .document(uploaded.document().id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(upload.current_version, 1);
        assert_eq!(e.ctx.store.list_documents(ws).await.unwrap().len(), 2);
    }
);

on_both_backends!(
    a_second_sync_of_unchanged_files_finds_every_one_unchanged,
    |e: Env| async move {
        let e = e;
        let ws = e.workspace("Archive").await;
        let folder = tempfile::tempdir().unwrap();
        // Written an hour ago: times recent enough to be still changing are not trusted.
        let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
        for i in 0..300 {
            let key = format!("year-{}/note-{i:04}.md", 2000 + i % 10);
            write(
                folder.path(),
                &key,
                &format!("# Note {i}\n\nThe archive's note number {i}.\n"),
            );
            std::fs::File::options()
                .write(true)
                .open(folder.path().join(&key))
                .unwrap()
                .set_modified(an_hour_ago)
                .unwrap();
        }
        let source = e
            .ingestor
            .add_source(ws, &folder_source(folder.path(), &[], &[]))
            .await
            .unwrap();
        let first = sync(&e.ingestor).await;
        assert_eq!(first.added, 300, "{first:?}");
        // The documents need not be indexed: the second sync compares files with rows.
        e.ctx.store.request_sync(source.id).await.unwrap();
        // (How long that takes for 1,000 files: docs/BENCHMARKS.md, "Folder sources".)
        let second = sync(&e.ingestor).await;
        assert_eq!(counts(&second), [0, 0, 0, 0, 300, 0], "{second:?}");
    }
);

on_both_backends!(
    a_sync_cut_short_is_finished_by_the_next_claim_without_duplicates,
    |e: Env| async move {
        let e = e;
        let ws = e.workspace("Handbook").await;
        let folder = tempfile::tempdir().unwrap();
        write(folder.path(), "leave.md", LEAVE);
        write(folder.path(), "security.md", SECURITY);
        write(folder.path(), "travel.md", TRAVEL);
        // Both workers read the time from one clock that the test moves.
        let clock = TestClock::new();
        let clocked = e.ctx.store.clone().with_clock(&clock);
        let survivor = Ingestor::new(&e.ctx, &e.search)
            .unwrap()
            .with_store(clocked.clone());
        let dying = Ingestor::new(&e.ctx, &e.search)
            .unwrap()
            .with_store(clocked.clone());
        let source = survivor
            .add_source(ws, &folder_source(folder.path(), &[], &[]))
            .await
            .unwrap();
        *dying.crash_after.lock().unwrap() = Some(Stage::SourceFile);
        assert!(
            dying.process_next_sync().await.is_err(),
            "the simulated crash after the first file"
        );
        assert_eq!(documents_by_key(&e, source.id).await.len(), 1);
        // The sync is still leased to the dead worker: nobody else can take it yet.
        assert!(survivor.process_next_sync().await.unwrap().is_none());
        clock.advance(Duration::from_secs(301));
        let resumed = sync(&survivor).await;
        assert_eq!(
            counts(&resumed),
            [2, 0, 0, 0, 1, 0],
            "what was done is found done: {resumed:?}"
        );
        let docs = documents_by_key(&e, source.id).await;
        assert_eq!(docs.len(), 3, "no file doubled: {docs:?}");
        survivor.run_until_idle(|_| {}).await.unwrap();
        assert_consistent(&e, ws).await;
        let source = clocked.source(source.id).await.unwrap().unwrap();
        assert_eq!((source.sync_state.as_str(), source.attempts), ("idle", 0));
    }
);

on_both_backends!(
    a_folder_outside_the_allowed_roots_or_a_bad_glob_is_refused,
    |e: Env| async move {
        let e = e;
        let ws = e.workspace("Handbook").await;
        let err = e
            .ingestor
            .add_source(ws, &folder_source(Path::new("/etc"), &[], &[]))
            .await
            .unwrap_err();
        assert!(matches!(err, lectern_core::Error::Forbidden(_)), "{err}");
        assert!(err.to_string().contains("ingest.source_roots"), "{err}");
        let folder = tempfile::tempdir().unwrap();
        let err = e
            .ingestor
            .add_source(ws, &folder_source(folder.path(), &["a[b"], &[]))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("\"a[b\""), "{err}");
        assert!(e.ctx.store.list_sources(ws).await.unwrap().is_empty());
    }
);

on_both_backends!(
    a_changed_folder_source_takes_what_its_new_settings_say_at_the_next_sync,
    |e: Env| async move {
        let e = e;
        let ws = e.workspace("Handbook").await;
        let folder = tempfile::tempdir().unwrap();
        let f = folder.path();
        write(f, "travel.md", TRAVEL);
        write(f, "leave.md", LEAVE);
        write(f, "policies/expenses.md", EXPENSES);
        write(f, "drafts/security.md", SECURITY);
        let source = e
            .ingestor
            .add_source(ws, &folder_source(f, &[], &[]))
            .await
            .unwrap();
        assert_eq!(counts(&sync(&e.ingestor).await), [4, 0, 0, 0, 0, 0]);
        e.ingestor.run_until_idle(|_| {}).await.unwrap();
        assert_consistent(&e, ws).await;

        // Refused exactly as an added source would be, and nothing changes.
        assert_refused(
            &e,
            &source,
            vec![
                (serde_json::json!({"include": ["a[b"]}), "\"a[b\""),
                (serde_json::json!({"path": "/etc"}), "ingest.source_roots"),
                (
                    serde_json::json!({"path": "relative/docs"}),
                    "absolute path",
                ),
                (serde_json::json!({"path": null}), "path"),
                (
                    serde_json::json!({"url": "https://example.org/"}),
                    "unknown field",
                ),
                (serde_json::json!(["*.md"]), "object"),
            ],
        )
        .await;

        // A narrower include: the next sync deletes the files it leaves out, from the
        // index too, and keeps the others as they are.
        let changed = e
            .ingestor
            .edit_source(
                &source,
                &UpdateSource {
                    name: Some("policies".into()),
                    settings: Some(serde_json::json!({"include": ["policies/**", "/travel.md"]})),
                    interval_secs: Some(Some(3600)),
                },
            )
            .await
            .unwrap();
        assert_eq!(changed.name, "policies");
        assert_eq!(
            changed.settings["path"], source.settings["path"],
            "the folder kept, resolved"
        );
        assert_eq!(changed.interval_secs, Some(3600));
        let before = documents_by_key(&e, source.id).await;
        e.ctx.store.request_sync(source.id).await.unwrap();
        let narrowed = sync(&e.ingestor).await;
        assert_eq!(counts(&narrowed), [0, 0, 0, 2, 2, 0], "{narrowed:?}");
        assert!(e.ingestor.run_until_idle(|_| {}).await.unwrap().is_empty());
        let after = documents_by_key(&e, source.id).await;
        let mut keys: Vec<&str> = after.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["policies/expenses.md", "travel.md"]);
        assert_eq!(after["travel.md"].id, before["travel.md"].id);
        assert_consistent(&e, ws).await;
        for gone in ["leave.md", "drafts/security.md"] {
            assert_eq!(
                e.search
                    .index
                    .count_document(ws, before[gone].id, None)
                    .await
                    .unwrap(),
                0,
                "{gone} is out of the index"
            );
        }

        // `null` puts the include back to its default: every file again.
        let widened = e
            .ingestor
            .edit_source(&changed, &settings(serde_json::json!({"include": null})))
            .await
            .unwrap();
        assert_eq!(widened.settings["include"], serde_json::json!([]));
        e.ctx.store.request_sync(source.id).await.unwrap();
        assert_eq!(counts(&sync(&e.ingestor).await), [2, 0, 0, 0, 2, 0]);
        e.ingestor.run_until_idle(|_| {}).await.unwrap();
        assert_consistent(&e, ws).await;
        assert_eq!(documents_by_key(&e, source.id).await.len(), 4);
    }
);

on_both_backends!(
    a_changed_web_source_is_held_to_the_rules_it_was_added_under,
    |e: Env| async move {
        let e = e;
        let ws = e.workspace("Site").await;
        // A public address written as one: nothing is fetched (no sync runs here).
        let added = e
            .ingestor
            .add_source(
                ws,
                &CreateSource {
                    kind: "web".into(),
                    name: None,
                    settings: serde_json::json!({"url": "https://1.1.1.1/docs/intro.html", "depth": 3}),
                    interval_secs: None,
                },
            )
            .await
            .unwrap();
        assert_eq!(added.settings["prefix"], "https://1.1.1.1/docs/");
        assert_refused(
            &e,
            &added,
            vec![
                (
                    serde_json::json!({"url": "http://127.0.0.1:9/docs/"}),
                    "crawl_allow_private",
                ),
                (serde_json::json!({"url": "file:///etc/passwd"}), "http"),
                (serde_json::json!({"pages": 0}), "pages 1 to"),
                (serde_json::json!({"depth": 500}), "depth is at most"),
                (serde_json::json!({"include": ["*.md"]}), "unknown field"),
            ],
        )
        .await;

        // A new start URL with the prefix back to its default, and a smaller depth.
        let moved = e
            .ingestor
            .edit_source(
                &added,
                &settings(
                    serde_json::json!({"url": "https://1.1.1.1/blog/", "prefix": null, "depth": 1}),
                ),
            )
            .await
            .unwrap();
        assert_eq!(
            moved.settings,
            serde_json::json!({
                "url": "https://1.1.1.1/blog/",
                "prefix": "https://1.1.1.1/blog/",
                "depth": 1,
                "pages": 500,
            })
        );
        assert_eq!(moved.kind, "web");

        // A new start URL alone: the prefix was its old URL's default, and follows it.
        let again = e
            .ingestor
            .edit_source(
                &moved,
                &settings(serde_json::json!({"url": "https://1.1.1.1/news/2026/"})),
            )
            .await
            .unwrap();
        assert_eq!(again.settings["prefix"], "https://1.1.1.1/news/2026/");
        assert_eq!(again.settings["depth"], 1, "what was not given stays");
        // A prefix of its own stays: a start URL outside it is refused.
        let wider = e
            .ingestor
            .edit_source(
                &again,
                &settings(serde_json::json!({"prefix": "https://1.1.1.1/news/"})),
            )
            .await
            .unwrap();
        let err = e
            .ingestor
            .edit_source(
                &wider,
                &settings(serde_json::json!({"url": "https://1.1.1.1/blog/"})),
            )
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains("does not lie under the prefix"),
            "{err}"
        );
    }
);

on_both_backends!(
    a_web_source_on_a_loopback_address_is_refused_unless_allowed,
    |e: Env| async move {
        let e = e;
        let ws = e.workspace("Site").await;
        for url in [
            "http://127.0.0.1:9/docs/",
            "http://[::1]:9/docs/",
            "http://localhost:9/docs/",
        ] {
            let new = CreateSource {
                kind: "web".into(),
                name: None,
                settings: serde_json::json!({ "url": url }),
                interval_secs: None,
            };
            let err = e.ingestor.add_source(ws, &new).await.unwrap_err();
            assert!(
                matches!(err, lectern_core::Error::Forbidden(_))
                    && err.to_string().contains("crawl_allow_private"),
                "{url}: {err}"
            );
        }
        assert!(e.ctx.store.list_sources(ws).await.unwrap().is_empty());
    }
);

/// A change of settings only.
fn settings(value: serde_json::Value) -> UpdateSource {
    UpdateSource {
        settings: Some(value),
        ..UpdateSource::default()
    }
}

/// Each of `refused` (settings, and words of the refusal) is refused with those words, and
/// the source's settings stay as they were.
async fn assert_refused(
    e: &Env,
    source: &lectern_store::entity::source::Model,
    refused: Vec<(serde_json::Value, &str)>,
) {
    for (bad, said) in refused {
        let err = e
            .ingestor
            .edit_source(source, &settings(bad.clone()))
            .await
            .unwrap_err();
        assert!(err.to_string().contains(said), "{bad}: {err}");
    }
    let unchanged = e.ctx.store.source(source.id).await.unwrap().unwrap();
    assert_eq!(unchanged.settings, source.settings);
}

/// A static site on loopback, as a documentation server answers: each file of `root` with
/// an ETag (its content's hash) and 304 to a matching `If-None-Match`, 404 for anything
/// else. It counts the pages it sent whole and those it answered 304, and records when
/// each `.html` page was asked for and how many were being answered at once at most.
struct Site {
    url: String,
    sent: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    not_modified: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    most_at_once: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    asked: std::sync::Arc<std::sync::Mutex<Vec<std::time::Instant>>>,
    _server: tokio::task::JoinHandle<()>,
}

async fn serve_site(root: std::path::PathBuf) -> Site {
    serve_site_slowly(root, Duration::ZERO).await
}

/// [`serve_site`], each page taking `think` before it is sent.
async fn serve_site_slowly(root: std::path::PathBuf, think: Duration) -> Site {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (sent, not_modified) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (most_at_once, asked) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(Mutex::new(Vec::new())),
    );
    let (s, n, m, a) = (
        sent.clone(),
        not_modified.clone(),
        most_at_once.clone(),
        asked.clone(),
    );
    let now_answering = Arc::new(AtomicUsize::new(0));
    let server = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let (root, s, n, m, a) = (root.clone(), s.clone(), n.clone(), m.clone(), a.clone());
            let answering = now_answering.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 16_384 {
                    if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let path = path.split(['?', '#']).next().unwrap_or_default();
                let if_none_match = head.lines().find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("if-none-match")
                        .then(|| value.trim().to_owned())
                });
                let page = path.ends_with(".html");
                if page {
                    a.lock().unwrap().push(std::time::Instant::now());
                    let at_once = answering.fetch_add(1, Ordering::SeqCst) + 1;
                    m.fetch_max(at_once, Ordering::SeqCst);
                    tokio::time::sleep(think).await;
                }
                let file = root.join(path.trim_start_matches('/'));
                let body = if path.contains("..") {
                    None
                } else {
                    std::fs::read(&file).ok()
                };
                let response = match body {
                    Some(body) => {
                        use sha2::Digest;
                        let etag = format!("\"{:x}\"", sha2::Sha256::digest(&body));
                        if if_none_match.as_deref() == Some(etag.as_str()) {
                            n.fetch_add(1, Ordering::SeqCst);
                            format!("HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n").into_bytes()
                        } else {
                            s.fetch_add(1, Ordering::SeqCst);
                            let mut r = format!(
                                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nETag: {etag}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .into_bytes();
                            r.extend_from_slice(&body);
                            r
                        }
                    }
                    None => {
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                            .to_vec()
                    }
                };
                if page {
                    answering.fetch_sub(1, Ordering::SeqCst);
                }
                let _ = socket.write_all(&response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Site {
        url,
        sent,
        not_modified,
        most_at_once,
        asked,
        _server: server,
    }
}

/// A small site: an index linking to `pages` pages, each of a sentence.
fn small_site(root: &Path, pages: usize) {
    let links: String = (1..=pages)
        .map(|i| format!("<li><a href=\"page{i}.html\">Page {i}</a></li>"))
        .collect();
    write(
        root,
        "docs/index.html",
        &format!(
            "<html><head><title>Index</title></head><body><h1>Index</h1><ul>{links}</ul></body></html>"
        ),
    );
    for i in 1..=pages {
        write(
            root,
            &format!("docs/page{i}.html"),
            &format!(
                "<html><head><title>Page {i}</title></head><body><h1 id=\"top\">Page {i}</h1><p>Page {i} explains topic number {i} of the small site.</p></body></html>"
            ),
        );
    }
}

async fn add_site(ingestor: &Ingestor, ws: uuid::Uuid, site: &Site) {
    ingestor
        .add_source(
            ws,
            &CreateSource {
                kind: "web".into(),
                name: None,
                settings: serde_json::json!({ "url": format!("{}/docs/index.html", site.url) }),
                interval_secs: None,
            },
        )
        .await
        .unwrap();
}

/// A crawl fetches a few pages at once; a site whose robots.txt asks for a crawl delay
/// gets one request at a time, that delay apart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crawl_fetches_pages_at_once_unless_robots_asks_for_a_delay() {
    use std::sync::atomic::Ordering;
    let e = env(TestDatabase::sqlite()).await;
    let ingestor = Ingestor::new(&e.ctx, &e.search)
        .unwrap()
        .with_crawl_allow_private(true)
        .with_crawl_concurrency(4);

    let root = tempfile::tempdir().unwrap();
    small_site(root.path(), 6);
    let site = serve_site_slowly(root.path().to_owned(), Duration::from_millis(300)).await;
    add_site(&ingestor, e.workspace("Fast").await, &site).await;
    let result = sync(&ingestor).await;
    assert_eq!([result.added, result.failed], [7, 0], "{result:?}");
    assert!(
        site.most_at_once.load(Ordering::SeqCst) >= 2,
        "the pages were fetched one at a time"
    );
    assert!(site.most_at_once.load(Ordering::SeqCst) <= 4);

    let root = tempfile::tempdir().unwrap();
    small_site(root.path(), 2);
    write(root.path(), "robots.txt", "User-agent: *\nCrawl-delay: 1\n");
    let polite = serve_site(root.path().to_owned()).await;
    add_site(&ingestor, e.workspace("Polite").await, &polite).await;
    let result = sync(&ingestor).await;
    assert_eq!([result.added, result.failed], [3, 0], "{result:?}");
    assert_eq!(polite.most_at_once.load(Ordering::SeqCst), 1);
    let asked = polite.asked.lock().unwrap().clone();
    assert_eq!(asked.len(), 3);
    for pair in asked.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= Duration::from_millis(900),
            "pages asked for {gap:?} apart, under the crawl delay"
        );
    }
}

on_both_backends!(
    a_web_source_follows_a_documentation_site_within_its_prefix,
    |e: Env| async move {
        use std::sync::atomic::Ordering;
        let e = e;
        // The Python tutorial's HTML (Debian's python3.11-doc), served on loopback, which
        // the crawler may reach only with crawl_allow_private.
        let pages = std::env::var_os("LECTERN_TEST_DOCS_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| lectern_core::default_cache_dir().join("test-docs"))
            .join("python-tutorial");
        let site_root = tempfile::tempdir().unwrap();
        let tutorial = site_root.path().join("tutorial");
        std::fs::create_dir_all(&tutorial).unwrap();
        for page in std::fs::read_dir(&pages)
            .unwrap_or_else(|e| panic!("{}: {e} (run scripts/fetch-test-docs.sh)", pages.display()))
        {
            let page = page.unwrap();
            std::fs::copy(page.path(), tutorial.join(page.file_name())).unwrap();
        }
        let site = serve_site(site_root.path().to_owned()).await;
        let ingestor = Ingestor::new(&e.ctx, &e.search)
            .unwrap()
            .with_crawl_allow_private(true);
        let ws = e.workspace("Python").await;
        let source = ingestor
            .add_source(
                ws,
                &CreateSource {
                    kind: "web".into(),
                    name: None,
                    settings: serde_json::json!({
                        "url": format!("{}/tutorial/index.html", site.url),
                        "depth": 1,
                        "pages": 6,
                    }),
                    interval_secs: None,
                },
            )
            .await
            .unwrap();

        let first = sync(&ingestor).await;
        assert!(first.added >= 4 && first.failed == 0, "{first:?}");
        ingestor.run_until_idle(|_| {}).await.unwrap();
        let crawled = documents_by_key(&e, source.id).await;
        assert_eq!(crawled.len() as u64, first.added);
        let prefix = format!("{}/tutorial/", site.url);
        for key in crawled.keys() {
            assert!(key.starts_with(&prefix), "{key} lies outside the prefix");
        }
        assert!(crawled.contains_key(&format!("{prefix}index.html")));
        assert_consistent(&e, ws).await;
        // Searched, a page's passage comes back as that page's document.
        let scope = WorkspaceScope::checked(&[ws], &[ws]).unwrap();
        let (page_url, page) = crawled
            .iter()
            .find(|(k, _)| !k.ends_with("index.html"))
            .unwrap();
        let hits = e
            .search(&scope, &page.title, SearchMode::Hybrid, 5, None)
            .await;
        assert!(
            hits.iter().any(|h| h.chunk.document_id == page.id),
            "searching {:?} finds nothing of {page_url}",
            page.title
        );
        // Its passages know the section they are in (the pages' `<section id>`), so that a
        // citation links there.
        assert!(
            hits.iter()
                .filter(|h| h.chunk.document_id == page.id)
                .all(|h| h.chunk.anchor.as_deref().is_some_and(|a| !a.is_empty())),
            "a passage of {page_url} without its section's anchor"
        );

        // Again, nothing changed: every page answers 304, nothing is fetched whole.
        let sent = site.sent.load(Ordering::SeqCst);
        e.ctx.store.request_sync(source.id).await.unwrap();
        let second = sync(&ingestor).await;
        assert_eq!(
            [second.added, second.changed, second.deleted],
            [0, 0, 0],
            "{second:?}"
        );
        assert_eq!(second.unchanged, first.added, "{second:?}");
        assert_eq!(
            site.sent.load(Ordering::SeqCst),
            sent,
            "a page was fetched whole again"
        );
        assert!(site.not_modified.load(Ordering::SeqCst) >= first.added as usize);

        // A page removed from the site is removed from the workspace and the index.
        std::fs::remove_file(tutorial.join(page_url.rsplit('/').next().unwrap())).unwrap();
        e.ctx.store.request_sync(source.id).await.unwrap();
        let third = sync(&ingestor).await;
        assert_eq!(third.deleted, 1, "{third:?}");
        ingestor.run_until_idle(|_| {}).await.unwrap();
        assert!(!documents_by_key(&e, source.id).await.contains_key(page_url));
        let hits = e
            .search(&scope, &page.title, SearchMode::Hybrid, 20, None)
            .await;
        assert!(hits.iter().all(|h| h.chunk.document_id != page.id));
        assert_consistent(&e, ws).await;

        // A new page linked first: the crawl reaches its page limit before the pages it
        // saw last time, and keeps them (a crawl that did not see the whole site deletes
        // only what answered 404).
        let before = documents_by_key(&e, source.id).await;
        let index = tutorial.join("index.html");
        let mut html = std::fs::read_to_string(&index).unwrap();
        let body = html.find("<body").unwrap();
        let open = body + html[body..].find('>').unwrap() + 1;
        html.insert_str(open, "<p><a href=\"aaa-news.html\">News</a></p>");
        std::fs::write(&index, html).unwrap();
        std::fs::write(
            tutorial.join("aaa-news.html"),
            "<html><head><title>News</title></head><body><h1>News</h1><p>The tutorial now covers pattern matching.</p></body></html>",
        )
        .unwrap();
        e.ctx.store.request_sync(source.id).await.unwrap();
        let fourth = sync(&ingestor).await;
        assert_eq!(fourth.deleted, 0, "{fourth:?}");
        let after = documents_by_key(&e, source.id).await;
        assert!(
            after.contains_key(&format!("{prefix}aaa-news.html")),
            "{fourth:?}"
        );
        for key in before.keys() {
            assert!(
                after.contains_key(key),
                "{key} was deleted by a crawl cut short"
            );
        }
    }
);
