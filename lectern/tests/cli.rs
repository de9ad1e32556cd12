//! The `lectern` binary as a user runs it, on the embedded defaults in a temporary data dir.

use std::process::Command;

fn lectern(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_lectern"));
    let model = lectern_embed::testing::default_options();
    cmd.arg("--data-dir")
        .arg(data_dir)
        .env("LECTERN_EMBED_MODEL_DIR", model.model_dir)
        .env("LECTERN_ORT_DYLIB", model.ort_dylib)
        .env("LECTERN_LLM_MODEL", lectern_llm::testing::smollm2_path())
        .env("LECTERN_LLM__CONTEXT_LENGTH", "2048")
        .env("LECTERN_LLM__MAX_TOKENS", "64")
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

#[test]
fn search_and_ask_answer_from_the_workspace_with_sources() {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(
        docs.path().join("leave.md"),
        "# Annual leave\n\nEmployees are entitled to thirty days of paid annual leave per calendar year.\n\n# Parking\n\nThe staff car park opens at six in the morning.\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let out = lectern(data.path()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    run(&["ingest", "--workspace", "HR", docs.path().to_str().unwrap()]);

    let found: serde_json::Value = serde_json::from_slice(&run(&[
        "search",
        "--workspace",
        "HR",
        "--limit",
        "3",
        "--json",
        "How many days of annual leave?",
    ]))
    .unwrap();
    let passages = found["passages"].as_array().unwrap();
    assert!(!passages.is_empty(), "{found}");
    for key in [
        "chunk_id", "document", "title", "page", "pages", "score", "text",
    ] {
        assert!(passages[0].get(key).is_some(), "{key} missing: {found}");
    }
    assert_eq!(passages[0]["document"], "leave.md");
    assert!(
        passages[0]["text"]
            .as_str()
            .unwrap()
            .contains("thirty days")
    );

    let answer: serde_json::Value = serde_json::from_slice(&run(&[
        "ask",
        "--workspace",
        "HR",
        "--json",
        "How many days of annual leave do employees get?",
    ]))
    .unwrap();
    for key in ["answer", "abstained", "citations", "passages", "timings"] {
        assert!(answer.get(key).is_some(), "{key} missing: {answer}");
    }
    for key in [
        "retrieval_ms",
        "first_token_ms",
        "total_ms",
        "completion_tokens",
        "tokens_per_second",
    ] {
        assert!(
            answer["timings"].get(key).is_some(),
            "timings.{key} missing: {answer}"
        );
    }
    for c in answer["citations"].as_array().unwrap() {
        assert_eq!(c["document"], "leave.md", "{answer}");
        for key in ["n", "page", "quote", "chunk_id", "supported"] {
            assert!(c.get(key).is_some(), "citation.{key} missing: {answer}");
        }
    }

    // The human form streams the answer, then lists the sources or where to look.
    let text = String::from_utf8(run(&[
        "ask",
        "--workspace",
        "HR",
        "When does the car park open?",
    ]))
    .unwrap();
    assert!(
        text.contains("Sources:") || text.contains("You may look here"),
        "{text}"
    );

    // An unknown workspace is a clear error, not an empty answer.
    let out = lectern(data.path())
        .args(["search", "--workspace", "Nope", "anything"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no workspace named \"Nope\""));
}

#[test]
fn users_and_api_keys_are_made_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let out = lectern(data.path())
        .args(["user", "create", "--email", "Admin@Example.org", "--admin"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("site admin"));
    let out = lectern(data.path())
        .args([
            "api-key",
            "create",
            "--user",
            "admin@example.org",
            "--name",
            "backup",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap();
    assert!(
        key.trim().starts_with("lk_") && key.trim().len() == 67,
        "{key}"
    );
    let out = lectern(data.path())
        .args(["api-key", "create", "--user", "nobody@example.org"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("lectern user create"));

    // A user who signs in to the web app: the password comes on standard input.
    let with_password = |password: &str| {
        let mut child = lectern(data.path())
            .args([
                "user",
                "create",
                "--email",
                "ops@example.org",
                "--password-stdin",
            ])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
        child.wait_with_output().unwrap()
    };
    let short = with_password("short");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 10 characters"));
    let out = with_password("a proper passphrase");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let db = format!("sqlite://{}", data.path().join("lectern.db").display());
    let hash = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = lectern_store::Store::connect(&db).await.unwrap();
        store
            .find_user_by_email("ops@example.org")
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .unwrap()
    });
    assert!(hash.starts_with("$argon2id$"), "{hash}");
}
