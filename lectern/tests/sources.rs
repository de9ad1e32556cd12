//! `lectern source`: a folder of real documents (a paper, a Word file, Markdown) kept in
//! step with a workspace, as a user runs it. One file changed, one added, one deleted and
//! one moved: after the next sync, search finds exactly the folder as it is (the moved
//! PDF under its new name and title, not read again), and `lectern check` finds one point
//! per chunk row. An exclude glob added with `lectern source edit` removes what it leaves
//! out at the next sync.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

mod common;
use common::lectern;

/// A file the fetch scripts put in the cache (or where `var` says).
fn fetched(var: &str, default: &str, name: &str, script: &str) -> PathBuf {
    let dir = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| lectern_core::default_cache_dir().join(default));
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run {script}",
        path.display()
    );
    path
}

const TRAVEL: &str = "# Travel policy\n\n## Trains\n\nSecond class for trips under four hours; first class above.\n\n## Hotels\n\nThe nightly cap is 140 euros.\n";
const TRAVEL_V2: &str = "# Travel policy\n\n## Trains\n\nEvery train journey is booked in second class, however long it takes.\n\n## Hotels\n\nThe nightly cap is 160 euros.\n";
const LEAVE: &str =
    "# Annual leave\n\nStaff get twenty-five days of paid annual leave every year.\n";
const SECRET: &str =
    "# Salaries\n\nThe board's salaries are kept in the quorvex ledger, outside the folder.\n";

/// `lectern --config CONFIG ARGS` on `data`, which must succeed; its JSON output.
fn json_of(data: &Path, config: &Path, args: &[&str]) -> Value {
    let out = run(data, Some(config), args);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn run(data: &Path, config: Option<&Path>, args: &[&str]) -> Output {
    let mut cmd = lectern(data);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    cmd.args(args).output().unwrap()
}

/// The passages `lectern search` finds in the workspace.
fn search(data: &Path, config: &Path, question: &str) -> Vec<Value> {
    let found = json_of(
        data,
        config,
        &[
            "search",
            "--workspace",
            "Handbook",
            "--limit",
            "20",
            "--json",
            question,
        ],
    );
    found["passages"].as_array().unwrap().clone()
}

fn result_counts(report: &Value) -> [u64; 6] {
    let r = &report["result"];
    [
        "added",
        "changed",
        "renamed",
        "deleted",
        "unchanged",
        "failed",
    ]
    .map(|k| r[k].as_u64().unwrap_or_else(|| panic!("{k} in {report}")))
}

/// `lectern check --json`, which must find the database and the index consistent.
fn consistent(data: &Path, config: &Path) -> Value {
    let out = run(data, Some(config), &["check", "--json"]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "lectern check printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["consistent"], true, "{report}");
    assert_eq!(
        report["points"], report["chunks"],
        "one point per chunk row: {report}"
    );
    assert_eq!(report["orphan_points"], 0, "{report}");
    report
}

/// The workspace's documents, straight from the database, by file name.
fn documents(data: &Path) -> Vec<lectern_store::entity::document::Model> {
    let db = format!("sqlite://{}", data.join("lectern.db").display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = lectern_store::Store::connect(&db).await.unwrap();
        let ws = store
            .find_workspace_by_name(lectern_store::NameScope::Operator, "Handbook")
            .await
            .unwrap()
            .expect("the workspace");
        store.list_documents(ws.id).await.unwrap()
    })
}

fn by_key<'a>(
    docs: &'a [lectern_store::entity::document::Model],
    key: &str,
) -> &'a lectern_store::entity::document::Model {
    docs.iter()
        .find(|d| d.source_key.as_deref() == Some(key))
        .unwrap_or_else(|| panic!("no document of {key}: {docs:#?}"))
}

#[test]
fn a_synced_folder_follows_its_files_exactly() {
    let paper = fetched(
        "LECTERN_DEV_QA_DIR",
        "dev-qa",
        "sample-sigconf.pdf",
        "scripts/fetch-dev-qa.sh",
    );
    let crazy = fetched(
        "LECTERN_TEST_DOCS_DIR",
        "test-docs",
        "crazyones.pdf",
        "scripts/fetch-test-docs.sh",
    );
    let word = fetched(
        "LECTERN_TEST_DOCS_DIR",
        "test-docs",
        "tbl-cell-access.docx",
        "scripts/fetch-test-docs.sh",
    );
    let data = tempfile::tempdir().unwrap();
    let allowed = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let data = data.path();
    let folder = allowed.path().join("handbook");
    let f = |key: &str| folder.join(key);
    for dir in ["papers", "drafts"] {
        std::fs::create_dir_all(f(dir)).unwrap();
    }
    std::fs::write(f("travel.md"), TRAVEL).unwrap();
    std::fs::write(f("leave.md"), LEAVE).unwrap();
    std::fs::copy(&paper, f("papers/sample-sigconf.pdf")).unwrap();
    std::fs::copy(&word, f("tables.docx")).unwrap();
    std::fs::write(f("drafts/wip.md"), "# Draft\n\nNot ready to be read.\n").unwrap();
    std::fs::write(f("logo.png"), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    std::fs::write(f(".notes.md"), "# Hidden\n").unwrap();
    std::fs::write(outside.path().join("salaries.md"), SECRET).unwrap();
    std::os::unix::fs::symlink(outside.path().join("salaries.md"), f("salaries.md")).unwrap();
    let folder_arg = folder.to_str().unwrap();
    let add: Vec<&str> = vec![
        "source",
        "add",
        "--workspace",
        "Handbook",
        "--include",
        "*.{md,pdf,docx}",
        "--exclude",
        "drafts/**",
        "--json",
        folder_arg,
    ];

    // Folder sources are refused until an administrator allows a directory.
    let out = run(data, None, &add);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("ingest.source_roots"), "{said}");
    let config = allowed.path().join("lectern.toml");
    std::fs::write(
        &config,
        format!(
            "[ingest]\nsource_roots = [{:?}]\n",
            allowed.path().to_str().unwrap()
        ),
    )
    .unwrap();
    let config = config.as_path();
    let out = run(
        data,
        Some(config),
        &[
            "source",
            "add",
            "--workspace",
            "Handbook",
            outside.path().to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("outside the directories allowed"), "{said}");

    // The first sync: four documents; the draft, the image, the hidden file and the link
    // out of the folder are left out.
    let first = json_of(data, config, &add);
    assert_eq!(result_counts(&first), [4, 0, 0, 0, 0, 0], "{first}");
    assert_eq!(first["indexed"], 4, "{first}");
    assert_eq!(first["failed"], serde_json::json!([]), "{first}");
    let skipped = first["result"]["skipped"].to_string();
    assert!(
        skipped.contains("salaries.md: a symbolic link out of the folder"),
        "{skipped}"
    );
    let report = consistent(data, config);
    assert_eq!(report["documents"], 4, "{report}");
    assert_eq!(report["ready"], 4, "{report}");
    let before = documents(data);
    let typeface = "Which typeface family does the acmart document class require?";
    let hits = search(data, config, typeface);
    assert!(
        hits.iter().any(|p| p["document"] == "sample-sigconf.pdf"
            && p["text"].as_str().unwrap().contains("Libertine")),
        "{hits:#?}"
    );
    let hits = search(data, config, "board salaries quorvex ledger");
    assert!(
        hits.iter()
            .all(|p| !p["text"].as_str().unwrap().contains("quorvex")),
        "a file outside the folder was read: {hits:#?}"
    );

    // One file changed, one added, one deleted, and the paper moved to another folder.
    std::fs::write(f("travel.md"), TRAVEL_V2).unwrap();
    std::fs::copy(&crazy, f("crazyones.pdf")).unwrap();
    std::fs::remove_file(f("leave.md")).unwrap();
    std::fs::create_dir(f("archive")).unwrap();
    std::fs::rename(f("papers/sample-sigconf.pdf"), f("archive/acm-sample.pdf")).unwrap();
    let second = json_of(
        data,
        config,
        &[
            "source",
            "sync",
            "--workspace",
            "Handbook",
            "--json",
            "handbook",
        ],
    );
    assert_eq!(result_counts(&second), [1, 1, 1, 1, 1, 0], "{second}");
    assert_eq!(
        second["indexed"], 2,
        "only the new and the changed file are read: {second}"
    );
    assert_eq!(second["source"]["documents"], 4, "{second}");

    let report = consistent(data, config);
    assert_eq!(report["documents"], 4, "{report}");
    let after = documents(data);
    let moved = by_key(&after, "archive/acm-sample.pdf");
    assert_eq!(moved.id, by_key(&before, "papers/sample-sigconf.pdf").id);
    assert_eq!(moved.current_version, 1, "a move embeds nothing again");
    assert_eq!(moved.file_name, "acm-sample.pdf");
    assert_eq!(by_key(&after, "travel.md").current_version, 2);
    assert_eq!(
        by_key(&after, "travel.md").id,
        by_key(&before, "travel.md").id
    );
    let leave = by_key(&before, "leave.md").id.to_string();
    assert!(after.iter().all(|d| d.id.to_string() != leave));

    // Search sees the folder as it is now.
    let hits = search(data, config, typeface);
    assert!(
        hits.iter().any(|p| p["document"] == "acm-sample.pdf"
            && p["title"] == "acm sample"
            && p["document_id"] == moved.id.to_string()
            && p["text"].as_str().unwrap().contains("Libertine")),
        "the moved paper is found under its new name and title: {hits:#?}"
    );
    assert!(
        hits.iter().all(|p| p["title"] != "sample sigconf"),
        "no passage shows the old title: {hits:#?}"
    );
    let hits = search(
        data,
        config,
        "here's to the crazy ones, the misfits, the rebels",
    );
    assert!(
        hits.iter().any(|p| p["document"] == "crazyones.pdf"),
        "the new file is found: {hits:#?}"
    );
    let hits = search(data, config, "train journeys second class hours");
    assert!(
        hits.iter().any(|p| p["text"]
            .as_str()
            .unwrap()
            .contains("however long it takes")),
        "the changed text is found: {hits:#?}"
    );
    assert!(
        hits.iter()
            .all(|p| !p["text"].as_str().unwrap().contains("under four hours")),
        "the old version is gone: {hits:#?}"
    );
    let hits = search(data, config, "days of paid annual leave");
    assert!(
        hits.iter().all(|p| p["document_id"] != leave.as_str()),
        "the deleted file is gone: {hits:#?}"
    );

    // Nothing changed: nothing read.
    let third = json_of(
        data,
        config,
        &[
            "source",
            "sync",
            "--workspace",
            "Handbook",
            "--json",
            "handbook",
        ],
    );
    assert_eq!(result_counts(&third), [0, 0, 0, 0, 4, 0], "{third}");
    assert_eq!(third["indexed"], 0, "{third}");
    let listed = json_of(
        data,
        config,
        &["source", "list", "--workspace", "Handbook", "--json"],
    );
    let sources = listed["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1, "{listed}");
    assert_eq!(sources[0]["name"], "handbook");
    assert_eq!(sources[0]["state"], "idle");
    assert_eq!(sources[0]["documents"], 4);
    assert_eq!(sources[0]["last_result"]["unchanged"], 4, "{listed}");

    // Changed: the archive left out from now on, and a schedule. Refused changes say why
    // and change nothing.
    let edit = |args: &[&str]| {
        let mut all = vec!["source", "edit", "--workspace", "Handbook"];
        all.extend_from_slice(args);
        all.push("handbook");
        run(data, Some(config), &all)
    };
    let out = edit(&[]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("nothing to change"), "{said}");
    let out = edit(&["--include", "a[b"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("the glob \"a[b\""), "{said}");
    let out = edit(&["--depth", "2"]);
    assert!(!out.status.success(), "a folder has no depth");
    // The excludes given replace the old ones, so the drafts' stays.
    let out = edit(&[
        "--exclude",
        "drafts/**",
        "--exclude",
        "archive/**",
        "--every",
        "3600",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let changed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        changed["source"]["settings"]["exclude"],
        serde_json::json!(["drafts/**", "archive/**"]),
        "{changed}"
    );
    assert_eq!(
        changed["source"]["settings"]["include"],
        serde_json::json!(["*.{md,pdf,docx}"]),
        "what was not given stays: {changed}"
    );
    assert_eq!(changed["source"]["interval_secs"], 3600, "{changed}");
    // The next sync applies it: the moved paper, now in the archive, goes.
    let fourth = json_of(
        data,
        config,
        &[
            "source",
            "sync",
            "--workspace",
            "Handbook",
            "--json",
            "handbook",
        ],
    );
    assert_eq!(result_counts(&fourth), [0, 0, 0, 1, 3, 0], "{fourth}");
    let report = consistent(data, config);
    assert_eq!(report["documents"], 3, "{report}");
    let hits = search(data, config, typeface);
    assert!(
        hits.iter().all(|p| p["document"] != "acm-sample.pdf"),
        "the excluded paper is out of the index: {hits:#?}"
    );

    // Removing the source removes its documents and their points.
    let out = run(
        data,
        Some(config),
        &["source", "remove", "--workspace", "Handbook", "handbook"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = consistent(data, config);
    assert_eq!(report["documents"], 0, "{report}");
    assert_eq!(report["points"], 0, "{report}");
}
