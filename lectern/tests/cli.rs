//! The `lectern` binary as a user runs it, on the embedded defaults in a temporary data dir.

mod common;
use common::{Served, free_port, ingest_report, lectern, run_ok, wait_ready};
use lectern_runtime::worker::ESCAPE_REFUSED;

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
        serde_json::from_str::<serde_json::Value>(&run_ok(data.path(), args)).unwrap()
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

/// Each file is read by a worker process of its own: a reader that crashes or hangs fails
/// that file with a reason a person understands, and the command (the server, when
/// serving) goes on to the next file. The faults are made on purpose by the worker.
#[test]
fn a_reader_that_crashes_or_hangs_fails_only_its_file() {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    let ingest = |file: &str, fault: Option<&str>| {
        let path = docs.path().join(file);
        std::fs::write(
            &path,
            format!("# {file}\n\nTrains are second class under four hours.\n"),
        )
        .unwrap();
        let mut cmd = lectern(data.path());
        cmd.env("LECTERN_INGEST__PARSE_TIMEOUT_SECS", "2");
        if let Some(fault) = fault {
            cmd.env("LECTERN_TEST_PARSER_FAULT", fault);
        }
        ingest_report(&mut cmd, &path)["documents"][0].clone()
    };
    let crashed = ingest("crash.md", Some("abort"));
    assert_eq!(crashed["status"], "failed", "{crashed}");
    let reason = crashed["error"].as_str().unwrap();
    assert!(
        reason.starts_with("the file made the document reader crash (signal 6"),
        "{reason}"
    );
    let hung = ingest("hang.md", Some("hang"));
    assert_eq!(hung["status"], "failed", "{hung}");
    assert_eq!(
        hung["error"],
        "reading the document took longer than 2 seconds; it may be damaged"
    );
    let escaped = ingest("escape.md", Some("escape"));
    assert_eq!(
        escaped["error"],
        format!("the file is damaged or truncated: {ESCAPE_REFUSED}"),
        "a reader has no network, writes no file, reads nothing of the server's, and cannot signal it"
    );
    let fine = ingest("fine.md", None);
    assert_eq!(fine["status"], "ingested", "{fine}");
}

/// A file over the size limit is refused unread, with its size and the limit; the next
/// file of the same run is read (files are copied in pieces, never held whole).
#[test]
fn ingest_refuses_a_file_over_the_limit_and_goes_on() {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    std::fs::write(docs.path().join("big.txt"), "word ".repeat(300_000)).unwrap();
    std::fs::write(
        docs.path().join("small.md"),
        "# Small\n\nTrains are second class.\n",
    )
    .unwrap();
    let report = ingest_report(
        lectern(data.path()).env("LECTERN_INGEST__MAX_FILE_MB", "1"),
        docs.path(),
    );
    let by_file = |name: &str| {
        report["documents"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["path"].as_str().unwrap().ends_with(name))
            .unwrap()
            .clone()
    };
    assert_eq!(by_file("big.txt")["status"], "failed");
    assert_eq!(
        by_file("big.txt")["error"],
        "the file is 1.4 MB, over the limit of 1 MB"
    );
    assert_eq!(by_file("small.md")["status"], "ingested");
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
    let web_secret = "web-secret-".repeat(6);
    let service_token = "service-token-".repeat(3);
    let secrets = [
        ("LECTERN_DATABASE_URL", "hunter2"),
        ("LECTERN_QDRANT_API_KEY", "sk-secret"),
        ("LECTERN_LLM_API_KEY", "llm-api-key"),
        ("LECTERN_WEB_SECRET", web_secret.as_str()),
        ("LECTERN_SERVICE_TOKEN", service_token.as_str()),
        ("LECTERN_WEB__OIDC__CLIENT_SECRET", "oidc-client-secret"),
        ("LECTERN_WEB__SMTP__PASSWORD", "smtp-password"),
    ];
    let mut cmd = lectern(data.path());
    for (name, secret) in secrets {
        let value = match name {
            "LECTERN_DATABASE_URL" => format!("postgres://lectern:{secret}@db/lectern"),
            _ => secret.to_owned(),
        };
        cmd.env(name, value);
    }
    let out = cmd
        .env("LECTERN_WEB__OIDC__ISSUER", "https://login.example.org")
        .env("LECTERN_WEB__OIDC__CLIENT_ID", "lectern")
        .env("LECTERN_PUBLIC_URL", "https://lectern.example.org")
        .env(
            "LECTERN_WEB__SMTP__URL",
            "smtp://mail.example.org:587?tls=required",
        )
        .env("LECTERN_WEB__SMTP__FROM", "lectern@example.org")
        .env("LECTERN_WEB__SMTP__USERNAME", "lectern")
        .arg("config")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("postgres://lectern:***@db/lectern"), "{text}");
    assert!(text.contains("https://login.example.org"), "{text}");
    assert!(text.contains("smtp://mail.example.org:587"), "{text}");
    for (name, secret) in secrets {
        assert!(!text.contains(secret), "{name} printed: {text}");
    }
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
    let run = |args: &[&str]| run_ok(data.path(), args).into_bytes();
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

/// The multilingual engines, chosen by the settings alone: German documents are found by
/// Spanish and English questions, and the index keeps the model it was built with.
#[test]
fn a_multilingual_engine_finds_german_passages_for_spanish_questions() {
    let docs = tempfile::tempdir().unwrap();
    for (name, text) in [
        (
            "urlaub.md",
            "# Urlaub\n\nMitarbeiter haben Anspruch auf dreißig Tage bezahlten Jahresurlaub pro Kalenderjahr.\n",
        ),
        (
            "parkplatz.md",
            "# Parkplatz\n\nDer Parkplatz für Mitarbeiter öffnet um sechs Uhr morgens.\n",
        ),
        (
            "reisen.md",
            "# Dienstreisen\n\nDienstreisen werden von der Reisestelle innerhalb von zwei Arbeitstagen genehmigt.\n",
        ),
    ] {
        std::fs::write(docs.path().join(name), text).unwrap();
    }
    let asset = lectern_embed::testing::asset;
    for (engine, dir, id) in [
        (
            "e5",
            asset("LECTERN_E5_MODEL_DIR", "e5"),
            "intfloat/multilingual-e5-small-q4",
        ),
        (
            "gguf",
            asset("LECTERN_GEMMA_MODEL_DIR", "gemma"),
            "google/embeddinggemma-300m-q8_0",
        ),
    ] {
        let data = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let out = lectern(data.path())
                .env("LECTERN_EMBEDDING__ENGINE", engine)
                .env("LECTERN_EMBED_MODEL_DIR", &dir)
                .env("LECTERN_EMBEDDING__MODEL_ID", id)
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{engine} {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap_or_default()
        };
        run(&["ingest", "--workspace", "HR", docs.path().to_str().unwrap()]);
        for (question, document) in [
            (
                "¿Cuántos días de vacaciones tienen los empleados?",
                "urlaub.md",
            ),
            ("¿A qué hora abre el aparcamiento?", "parkplatz.md"),
            ("Who approves business trips?", "reisen.md"),
        ] {
            let found = run(&["search", "--workspace", "HR", "--json", question]);
            assert_eq!(
                found["passages"][0]["document"], document,
                "{engine}: {found}"
            );
        }
        // The index was built with this model: MiniLM may not read it.
        let out = lectern(data.path())
            .args(["search", "--workspace", "HR", "anything"])
            .output()
            .unwrap();
        assert!(!out.status.success(), "{engine}: MiniLM searched its index");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(id),
            "{engine}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
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

#[test]
fn search_and_ask_through_a_running_server_with_an_api_key() {
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| run_ok(data.path(), args);
    run(&["user", "create", "--email", "ada@example.org"]);
    run(&["user", "create", "--email", "bob@example.org"]);
    let ada = run(&["api-key", "create", "--user", "ada@example.org"])
        .trim()
        .to_owned();
    let bob = run(&["api-key", "create", "--user", "bob@example.org"])
        .trim()
        .to_owned();

    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let _server = Served::start(data.path(), port, &[]);

    // Ada makes a workspace and puts a document in it, over the API.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let client = lectern_api::Client::new(
        http.clone(),
        &url,
        &url,
        lectern_api::Auth::ApiKey(ada.clone()),
    );
    rt.block_on(async {
        wait_ready(&http, &url).await;
        let ws = client.create_workspace("HR").await.unwrap();
        let texts = lectern_api::ingest::TextUpload {
            documents: vec![lectern_api::ingest::TextDocument {
                name: "leave.md".into(),
                text: "# Annual leave\n\nEmployees are entitled to thirty days of paid annual leave per calendar year.\n".into(),
            }],
        };
        client.upload_texts(ws.id, &texts).await.unwrap();
        for _ in 0..240 {
            let docs = client.documents(ws.id).await.unwrap();
            if docs.iter().all(|d| d.status == "ready") {
                return;
            }
            assert!(docs.iter().all(|d| d.status != "failed"), "{docs:?}");
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        panic!("the document was never ready");
    });

    let remote = |key: &str, args: &[&str]| {
        lectern(data.path())
            .args(args)
            .args(["--server", &url, "--api-key", key])
            .output()
            .unwrap()
    };
    let out = remote(
        &ada,
        &[
            "search",
            "--workspace",
            "HR",
            "--json",
            "How many days of annual leave?",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found["passages"][0]["document"], "leave.md", "{found}");
    assert!(
        found["passages"][0]["text"]
            .as_str()
            .unwrap()
            .contains("thirty days")
    );

    let out = remote(
        &ada,
        &[
            "ask",
            "--workspace",
            "HR",
            "--json",
            "How many days of annual leave do employees get?",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(answer["passages"][0]["document"], "leave.md", "{answer}");
    for c in answer["citations"].as_array().unwrap() {
        assert_eq!(c["document"], "leave.md", "{answer}");
    }
    // It went through the server: the exchange is kept as Ada's conversation there.
    let conversations = rt.block_on(client.conversations()).unwrap();
    assert_eq!(conversations.len(), 1, "{conversations:?}");

    // A stranger's key cannot name Ada's workspace; no key is a clear error.
    let out = remote(&bob, &["search", "--workspace", "HR", "leave"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("no workspace named \"HR\" that this API key can read"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = lectern(data.path())
        .args(["ask", "--workspace", "HR", "--server", &url, "leave"])
        .env_remove("LECTERN_API_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--server needs an API key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A scanned PDF is ingested from the command line with its text read by OCR, and the
/// report says which pages were; `lectern eval ocr` finds the words of real text pages
/// again in scans made of them (a few pages here; docs/EVALUATION.md has the 50-page
/// figure).
#[test]
fn scans_are_read_by_ocr_and_ocr_is_measured_on_real_pages() {
    let data = tempfile::tempdir().unwrap();
    let docs = tempfile::tempdir().unwrap();
    let test_docs = std::env::var_os("LECTERN_TEST_DOCS_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| lectern_core::default_cache_dir().join("test-docs"));
    std::fs::copy(test_docs.join("skew.pdf"), docs.path().join("skew.pdf")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&run_ok(
        data.path(),
        &[
            "ingest",
            "--workspace",
            "Scans",
            "--json",
            docs.path().to_str().unwrap(),
        ],
    ))
    .unwrap();
    let doc = &report["documents"][0];
    assert_eq!(doc["status"], "ingested", "{report}");
    assert!(doc["chunks"].as_u64().unwrap() >= 1, "{report}");
    assert_eq!(
        doc["notice"], "1 of 1 page was read by OCR (page 1).",
        "{report}"
    );

    let dev_qa = std::env::var_os("LECTERN_DEV_QA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| lectern_core::default_cache_dir().join("dev-qa"));
    let measured: serde_json::Value = serde_json::from_str(&run_ok(
        data.path(),
        &[
            "eval",
            "ocr",
            "--pages",
            "3",
            "--json",
            dev_qa.to_str().unwrap(),
        ],
    ))
    .unwrap();
    assert_eq!(measured["pages"], 3, "{measured}");
    assert!(measured["words"].as_u64().unwrap() >= 3 * 50, "{measured}");
    let recall = measured["recall"].as_f64().unwrap();
    assert!(recall >= 0.95, "word recall {recall}: {measured}");
}
