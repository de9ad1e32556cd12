//! The `lectern` binary as a user runs it, on the embedded defaults in a temporary data dir.

use std::process::Command;

fn lectern(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lectern"));
    let model = lectern_embed::testing::default_options();
    cmd.arg("--data-dir")
        .arg(data_dir)
        .env("LECTERN_EMBED_MODEL_DIR", model.model_dir)
        .env("LECTERN_ORT_DYLIB", model.ort_dylib)
        .env_remove("LECTERN_DATABASE_URL")
        .env_remove("LECTERN_QDRANT_URL");
    cmd
}

#[test]
fn ingest_reports_each_file_and_exits_zero_when_some_fail() {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(
        docs.path().join("travel.md"),
        "# Travel\n\nTrains are second class under four hours.\n",
    )
    .unwrap();
    std::fs::create_dir(docs.path().join("sub")).unwrap();
    std::fs::write(docs.path().join("sub/empty.txt"), "").unwrap();
    std::fs::write(docs.path().join(".hidden.md"), "# skipped").unwrap();

    let run = |args: &[&str]| {
        let out = lectern(data.path()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let folder = docs.path().to_str().unwrap();
    let report = run(&["ingest", "--workspace", "Handbook", "--json", folder]);
    let documents = report["documents"].as_array().unwrap();
    assert_eq!(documents.len(), 2, "{report}");
    let by_file = |name: &str| {
        documents
            .iter()
            .find(|d| d["path"].as_str().unwrap().ends_with(name))
            .unwrap()
            .clone()
    };
    assert_eq!(by_file("travel.md")["status"], "ingested");
    assert!(by_file("travel.md")["chunks"].as_u64().unwrap() >= 1);
    assert_eq!(by_file("empty.txt")["status"], "failed");
    assert_eq!(by_file("empty.txt")["error"], "the file is empty");
    assert_eq!(report["totals"]["ingested"], 1);
    assert_eq!(report["totals"]["failed"], 1);

    // Again: nothing changed, nothing to do.
    let again = run(&["ingest", "--workspace", "Handbook", "--json", folder]);
    assert_eq!(again["totals"]["unchanged"], 2, "{again}");
}

#[test]
fn a_missing_path_or_bad_config_fails_with_a_clear_message() {
    let data = tempfile::tempdir().unwrap();
    let out = lectern(data.path())
        .args(["ingest", "--workspace", "W", "/no/such/folder"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/folder"));

    let out = lectern(data.path())
        .env("LECTERN_DATABASE_URL", "mysql://x")
        .arg("migrate")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("database.url"));
}

#[test]
fn config_never_prints_secrets() {
    let data = tempfile::tempdir().unwrap();
    let out = lectern(data.path())
        .env(
            "LECTERN_DATABASE_URL",
            "postgres://lectern:hunter2@db/lectern",
        )
        .env("LECTERN_QDRANT_API_KEY", "sk-secret")
        .arg("config")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(text.contains("postgres://lectern:***@db/lectern"), "{text}");
    assert!(
        !text.contains("hunter2") && !text.contains("sk-secret"),
        "{text}"
    );
}
