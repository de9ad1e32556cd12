//! `lectern check` on real data, and the quick versions of the reliability drills of
//! docs/RELIABILITY.md: hostile files ingested from the command line, and a server killed
//! mid-ingest and restarted. Each ends with `lectern check` finding the database and the
//! index consistent.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

mod common;
use common::{Served, free_port, ingest_report, lectern, run_ok, wait_ready};

/// `lectern check --json`: whether it exited 0, and its report.
fn check(data_dir: &Path) -> (Option<i32>, Value) {
    let out = lectern(data_dir)
        .args(["check", "--json"])
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "lectern check printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), report)
}

/// `lectern ingest --json PATH` with a short parse timeout; it must exit 0.
fn ingest(data_dir: &Path, path: &Path) -> Value {
    ingest_report(
        lectern(data_dir).env("LECTERN_INGEST__PARSE_TIMEOUT_SECS", "30"),
        path,
    )
}

#[test]
fn check_finds_ingested_documents_consistent_and_a_lost_row_not() {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(
        docs.path().join("travel.md"),
        "# Travel\n\nTrains are second class under four hours; first class above.\n\n\
         ## Hotels\n\nA night in a hotel costs at most 140 euros in a capital city.\n",
    )
    .unwrap();
    std::fs::write(
        docs.path().join("leave.md"),
        "# Annual leave\n\nEmployees are entitled to thirty days of paid annual leave.\n",
    )
    .unwrap();
    let report = ingest(data.path(), docs.path());
    assert_eq!(report["totals"]["ingested"], 2, "{report}");

    let (code, found) = check(data.path());
    assert_eq!(code, Some(0), "{found}");
    assert_eq!(found["consistent"], true, "{found}");
    assert_eq!(found["workspaces"], 1);
    assert_eq!(found["documents"], 2);
    assert_eq!(found["ready"], 2);
    assert_eq!(found["failed"], 0);
    assert_eq!(found["pending"], 0);
    assert_eq!(found["chunks"], report["totals"]["chunks"], "{found}");
    assert_eq!(found["points"], found["chunks"], "one point per chunk row");
    assert_eq!(found["orphan_points"], 0);
    assert_eq!(found["problems"], serde_json::json!([]));

    // A document row lost (as a crash between the index and the database might): its
    // points are orphans now, and the check says so and exits 1.
    let lost: uuid::Uuid = report["documents"][0]["document_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let lost_chunks = report["documents"][0]["chunks"].as_u64().unwrap();
    let db = format!("sqlite://{}", data.path().join("lectern.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = lectern_store::Store::connect(&db).await.unwrap();
        store.delete_document_row(lost).await.unwrap();
    });
    let (code, found) = check(data.path());
    assert_eq!(code, Some(1), "{found}");
    assert_eq!(found["consistent"], false);
    assert_eq!(found["documents"], 1);
    assert_eq!(found["orphan_points"], lost_chunks, "{found}");
    let problem = found["problems"][0]["problem"].as_str().unwrap();
    assert!(problem.contains("belong to no document"), "{problem}");
}

#[test]
fn check_finds_documents_whose_source_is_gone_and_repair_deletes_them() {
    let data = tempfile::tempdir().unwrap();
    let allowed = tempfile::tempdir().unwrap();
    let handbook = allowed.path().join("handbook");
    let archive = allowed.path().join("archive");
    for dir in [&handbook, &archive] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(
        handbook.join("travel.md"),
        "# Travel\n\nTrains are second class under four hours; first class above.\n",
    )
    .unwrap();
    std::fs::write(
        handbook.join("leave.md"),
        "# Annual leave\n\nEmployees are entitled to thirty days of paid annual leave.\n",
    )
    .unwrap();
    std::fs::write(
        archive.join("security.md"),
        "# Security\n\nBadges are worn at all times inside the building.\n",
    )
    .unwrap();
    let config = allowed.path().join("lectern.toml");
    std::fs::write(
        &config,
        format!(
            "[ingest]\nsource_roots = [{:?}]\n",
            allowed.path().to_str().unwrap()
        ),
    )
    .unwrap();
    for folder in [&handbook, &archive] {
        let out = lectern(data.path())
            .arg("--config")
            .arg(&config)
            .args(["source", "add", "--workspace", "Handbook", "--json"])
            .arg(folder)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (code, found) = check(data.path());
    assert_eq!(code, Some(0), "{found}");
    assert_eq!(found["documents"], 3, "{found}");
    assert_eq!(found["documents_without_source"], 0, "{found}");

    // The handbook's source row lost (a removal cut short after the row went, or a
    // database mended by hand), and the archive's removal cut short after it was marked:
    // their documents stay searchable, with nothing left to sync or remove them.
    let db = format!("sqlite://{}", data.path().join("lectern.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let documents = rt.block_on(async {
        let store = lectern_store::Store::connect(&db).await.unwrap();
        let ws = store
            .find_workspace_by_name(lectern_store::NameScope::Operator, "Handbook")
            .await
            .unwrap()
            .expect("the workspace");
        let source = |name: &'static str| {
            let store = store.clone();
            async move {
                store
                    .find_source(ws.id, name)
                    .await
                    .unwrap()
                    .expect("the source")
            }
        };
        store
            .delete_source_row(source("handbook").await.id)
            .await
            .unwrap();
        store
            .mark_source_deleting(source("archive").await.id)
            .await
            .unwrap();
        store.list_documents(ws.id).await.unwrap()
    });
    assert_eq!(documents.len(), 3);
    let (code, found) = check(data.path());
    assert_eq!(code, Some(1), "{found}");
    assert_eq!(found["consistent"], false);
    assert_eq!(found["documents_without_source"], 3, "{found}");
    let problems: Vec<&str> = found["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["problem"].as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), 3, "{found}");
    assert_eq!(
        problems
            .iter()
            .filter(|p| p.contains("is gone") && p.contains("lectern check --repair"))
            .count(),
        2,
        "{problems:#?}"
    );
    assert_eq!(
        problems
            .iter()
            .filter(|p| p.contains("is being removed") && p.contains("lectern source remove"))
            .count(),
        1,
        "{problems:#?}"
    );

    // --repair deletes them the normal way (index points, rows, originals), finishes the
    // archive's removal, and checks again.
    let out = lectern(data.path())
        .args(["check", "--repair", "--json"])
        .output()
        .unwrap();
    let repaired: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "lectern check --repair printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "{repaired}");
    assert_eq!(repaired["consistent"], true, "{repaired}");
    assert_eq!(repaired["repaired"]["documents_deleted"], 3, "{repaired}");
    assert_eq!(repaired["repaired"]["removals_finished"], 1, "{repaired}");
    assert_eq!(repaired["documents"], 0, "{repaired}");
    assert_eq!(repaired["points"], 0, "{repaired}");
    for doc in &documents {
        assert!(
            !data
                .path()
                .join("originals")
                .join(doc.id.to_string())
                .exists(),
            "the original of {} is gone too",
            doc.file_name
        );
    }
    let sources = rt.block_on(async {
        let store = lectern_store::Store::connect(&db).await.unwrap();
        let ws = store
            .find_workspace_by_name(lectern_store::NameScope::Operator, "Handbook")
            .await
            .unwrap()
            .expect("the workspace");
        store.list_sources(ws.id).await.unwrap()
    });
    assert!(sources.is_empty(), "{sources:?}");
    // Nothing left to repair: a second run says so and passes.
    let (code, found) = check(data.path());
    assert_eq!(code, Some(0), "{found}");
}

/// The hostile-upload drill, small: 50 hostile files and 5 good ones from
/// scripts/drill/mutate.py (the full drill is scripts/drill/hostile.sh).
#[test]
fn hostile_files_fail_alone_and_leave_the_store_consistent() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cache = lectern_core::default_cache_dir();
    let dir = |var: &str, default: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| cache.join(default))
    };
    let files = tempfile::tempdir().unwrap();
    let made = Command::new("python3")
        .arg(root.join("scripts/drill/mutate.py"))
        .args(["--count", "50", "--good", "5", "--seed", "7", "--out"])
        .arg(files.path())
        .arg("--dev-qa")
        .arg(dir("LECTERN_DEV_QA_DIR", "dev-qa"))
        .arg("--test-docs")
        .arg(dir("LECTERN_TEST_DOCS_DIR", "test-docs"))
        .output()
        .expect("python3 runs scripts/drill/mutate.py");
    assert!(
        made.status.success(),
        "mutate.py (scripts/fetch-dev-qa.sh and scripts/fetch-test-docs.sh fetch its seeds): {}",
        String::from_utf8_lossy(&made.stderr)
    );

    let data = tempfile::tempdir().unwrap();
    let report = ingest(data.path(), files.path());
    let documents = report["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 55, "every file has an outcome");
    for doc in documents {
        let path = Path::new(doc["path"].as_str().unwrap());
        let name = path.file_name().unwrap().to_string_lossy();
        let status = doc["status"].as_str().unwrap();
        assert!(
            matches!(status, "ingested" | "failed" | "unchanged"),
            "{name}: {doc}"
        );
        if status == "failed" {
            assert!(
                doc["error"].as_str().is_some_and(|e| !e.trim().is_empty()),
                "{name} failed without a reason: {doc}"
            );
        }
        if name.starts_with("good-") {
            assert_eq!(status, "ingested", "{name} is an unmodified seed: {doc}");
        }
    }
    let totals = &report["totals"];
    // At the least the empty files and the zip bombs (four of each) must fail.
    assert!(
        totals["failed"].as_u64().unwrap() >= 8,
        "the hostile files were refused or failed, not read as good: {totals}"
    );

    let (code, found) = check(data.path());
    assert_eq!(code, Some(0), "{found}");
    let ingested = totals["ingested"].as_u64().unwrap();
    let failed = totals["failed"].as_u64().unwrap();
    assert_eq!(found["documents"], ingested + failed, "{found}");
    assert_eq!(found["ready"], ingested);
    assert_eq!(found["failed"], failed);
    assert_eq!(found["pending"], 0);
    assert_eq!(found["points"], found["chunks"], "{found}");
}

/// A note of some thirty paragraphs, its words its own (the same bytes twice would be
/// one document).
fn note(i: usize) -> String {
    let topics = [
        "travel", "leave", "expenses", "security", "laptops", "parking", "training",
    ];
    let mut text = format!("# Note {i}: {}\n\n", topics[i % topics.len()]);
    for p in 0..30 {
        let topic = topics[(i + p) % topics.len()];
        text.push_str(&format!(
            "## Rule {i}.{p}\n\nFor {topic}, rule {i}.{p} applies from day {} of the month: \
             a request names the team, the cost centre {}, the manager who approves it and \
             the date by which it is needed. Requests without a receipt above {} euros are \
             sent back, and the service desk answers within {} working days.\n\n",
            1 + (i * 7 + p) % 28,
            1000 + i * 31 + p,
            20 + (i + p) % 50,
            1 + (i + p) % 5,
        ));
    }
    text
}

/// The crash drill, small: a server killed (SIGKILL) mid-ingest and restarted on the same
/// data finishes every document once, with the database and the index in agreement (the
/// full drill is scripts/drill/crash.sh). A job whose worker was killed is claimed again
/// when its lease runs out: ten seconds here (`ingest.lease_secs`), five minutes by default.
#[test]
fn a_server_killed_mid_ingest_finishes_every_document_after_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| run_ok(data.path(), args);
    run(&["user", "create", "--email", "drill@example.org"]);
    let key = run(&["api-key", "create", "--user", "drill@example.org"])
        .trim()
        .to_owned();
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let serve = || Served::start(data.path(), port, &[("LECTERN_INGEST__LEASE_SECS", "10")]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let client = lectern_api::Client::new(
        http.clone(),
        &url,
        &url,
        lectern_api::Auth::ApiKey(key.clone()),
    );

    let server = serve();
    let (ws, at_kill) = rt.block_on(async {
        wait_ready(&http, &url).await;
        let ws = client.create_workspace("Drill").await.unwrap();
        let texts = lectern_api::ingest::TextUpload {
            documents: (0..20)
                .map(|i| lectern_api::ingest::TextDocument {
                    name: format!("note-{i:02}.md"),
                    text: note(i),
                })
                .collect(),
        };
        let uploaded = client.upload_texts(ws.id, &texts).await.unwrap();
        assert_eq!(uploaded.documents.len(), 20);
        // Killed as soon as the first document is ready: the others are queued or halfway.
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let docs = client.documents(ws.id).await.unwrap();
            if docs.iter().any(|d| d.status == "ready") {
                return (ws.id, docs);
            }
            assert!(
                Instant::now() < deadline,
                "no document was ever ready: {docs:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    drop(server);
    let unfinished = at_kill
        .iter()
        .filter(|d| d.status == "queued" || d.status == "processing")
        .count();
    assert!(
        unfinished > 0,
        "every document was done before the kill, so it tested nothing: {at_kill:?}"
    );

    let server = serve();
    rt.block_on(async {
        wait_ready(&http, &url).await;
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let docs = client.documents(ws).await.unwrap();
            assert_eq!(docs.len(), 20, "no document lost or doubled: {docs:?}");
            if docs
                .iter()
                .all(|d| d.status == "ready" || d.status == "failed")
            {
                assert!(
                    docs.iter().all(|d| d.status == "ready"),
                    "these notes are all readable: {docs:?}"
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "documents still unfinished after the restart: {docs:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });
    drop(server);

    let (code, found) = check(data.path());
    assert_eq!(code, Some(0), "{found}");
    assert_eq!(found["documents"], 20, "{found}");
    assert_eq!(found["ready"], 20);
    assert_eq!(found["pending"], 0);
    assert_eq!(found["points"], found["chunks"], "{found}");
}
