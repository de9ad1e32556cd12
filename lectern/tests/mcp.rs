//! Lectern's MCP server as assistants reach it, through the official Python MCP client
//! (`mcp` on PyPI, which scripts/test.sh installs): streamable HTTP at `/mcp` of
//! `lectern serve`, with an API key, and `lectern mcp` over stdio. The tools answer from
//! the caller's workspaces, and a stranger's key gets nothing of them.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Served, free_port, run_ok, wait_ready, with_test_env};
use serde_json::{Value, json};

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/mcp_client.py");
const QUESTION: &str = "How many days of annual leave do employees get?";
const LEAVE: &str = "# Annual leave\n\nEmployees are entitled to thirty days of paid annual leave per calendar year.\n\n# Sick leave\n\nSick leave needs a doctor's note from the third day of absence.\n";

/// The Python client run with `args` (see the script for them), in the tests' environment
/// so that a `lectern` it starts finds the models; its report.
fn mcp_client(args: &[&str]) -> Value {
    let mut cmd = Command::new("python3");
    cmd.arg(CLIENT).args(args);
    with_test_env(&mut cmd).env_remove("LECTERN_API_KEY");
    let out = cmd.output().expect("python3");
    assert!(
        out.status.success(),
        "the MCP client failed (scripts/test.sh installs it: python3 -m pip install \"mcp==2.*\"):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// What the owner of the workspace HR sees, over either transport.
fn assert_owner_sees_hr(report: &Value) {
    assert_eq!(
        report["tools"],
        json!(["ask", "list_workspaces", "read_passage", "search"]),
        "{report:#}"
    );
    let workspaces = report["list_workspaces"]["data"]["workspaces"]
        .as_array()
        .unwrap_or_else(|| panic!("{report:#}"));
    assert_eq!(workspaces.len(), 1, "{report:#}");
    assert_eq!(workspaces[0]["name"], "HR");
    assert_eq!(workspaces[0]["owned"], true);

    for search in ["search", "search_named"] {
        let passage = &report[search]["data"]["passages"][0];
        assert_eq!(report[search]["is_error"], false, "{report:#}");
        assert_eq!(passage["document"], "leave.md", "{report:#}");
        assert_eq!(passage["page"], 1);
        assert!(passage["score"].is_number());
        assert!(
            passage["text"].as_str().unwrap().contains("thirty days"),
            "{report:#}"
        );
    }

    let read = &report["read_passage"];
    assert_eq!(read["is_error"], false, "{report:#}");
    assert_eq!(read["data"]["document"], "leave.md");
    assert!(
        read["data"]["text"]
            .as_str()
            .unwrap()
            .contains("thirty days")
    );
    assert!(read["data"]["before"].is_array() && read["data"]["after"].is_array());

    let ask = &report["ask"];
    assert_eq!(ask["is_error"], false, "{report:#}");
    assert!(ask["data"]["answer"].is_string(), "{report:#}");
    assert!(ask["data"]["conversation_id"].is_string(), "{report:#}");
    for c in ask["data"]["citations"].as_array().unwrap() {
        assert_eq!(c["document"], "leave.md", "{report:#}");
    }
}

/// What a stranger sees of HR and of its passage `chunk`: nothing.
fn assert_stranger_sees_nothing(report: &Value) {
    assert_eq!(
        report["list_workspaces"]["data"]["workspaces"],
        json!([]),
        "{report:#}"
    );
    for tool in ["search", "search_named", "read_passage", "ask"] {
        assert_eq!(report[tool]["is_error"], true, "{tool}: {report:#}");
    }
    assert!(
        report["search_named"]["text"]
            .as_str()
            .unwrap()
            .contains("no workspace named \"HR\""),
        "{report:#}"
    );
    assert_eq!(report["read_passage"]["data"]["code"], "not_found");
    let text = report.to_string();
    assert!(
        !text.contains("thirty days") && !text.contains("leave.md"),
        "{report:#}"
    );
}

#[test]
fn mcp_tools_answer_from_the_callers_workspaces_over_http_and_stdio() {
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
    let server = Served::start(data.path(), port, &[]);
    hr_workspace_of(&url, &ada);
    let mcp = format!("{url}/mcp");

    // Over streamable HTTP, with the owner's key.
    let owner = mcp_client(&[
        "--key",
        ada.as_str(),
        "--workspace",
        "HR",
        "--ask",
        QUESTION,
        mcp.as_str(),
    ]);
    assert_owner_sees_hr(&owner);
    let chunk = owner["search"]["data"]["passages"][0]["chunk_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // A stranger's key: let in, and shown nothing of Ada's, not even by the chunk's id.
    let stranger = mcp_client(&[
        "--key",
        bob.as_str(),
        "--workspace",
        "HR",
        "--chunk",
        chunk.as_str(),
        "--ask",
        QUESTION,
        mcp.as_str(),
    ]);
    assert_stranger_sees_nothing(&stranger);

    // No key, or a wrong one: refused before any tool runs.
    let no_key: &[&str] = &[QUESTION, mcp.as_str()];
    let wrong_key: &[&str] = &["--key", "lk_wrong", QUESTION, mcp.as_str()];
    for args in [no_key, wrong_key] {
        let refused = mcp_client(args);
        assert!(refused["raised"].is_string(), "{refused:#}");
        assert!(refused.get("tools").is_none(), "{refused:#}");
    }

    // Over stdio: `lectern mcp` opens the data dir itself, so the server gives it up first.
    drop(server);
    let owner = stdio(
        data.path(),
        &["--user", "ada@example.org"],
        &["--workspace", "HR", "--ask"],
    );
    assert_owner_sees_hr(&owner);
    let owner_by_key = stdio(
        data.path(),
        &["--api-key", ada.as_str()],
        &["--workspace", "HR"],
    );
    assert_eq!(
        owner_by_key["search_named"]["is_error"], false,
        "{owner_by_key:#}"
    );
    let stranger = stdio(
        data.path(),
        &["--api-key", bob.as_str()],
        &["--workspace", "HR", "--chunk", chunk.as_str(), "--ask"],
    );
    assert_stranger_sees_nothing(&stranger);
    let nobody: &[&str] = &[];
    let wrong_key: &[&str] = &["--api-key", "lk_wrong"];
    let unknown_user: &[&str] = &["--user", "nobody@example.org"];
    for who in [nobody, wrong_key, unknown_user] {
        let refused = stdio(data.path(), who, &[]);
        assert!(refused["raised"].is_string(), "{who:?}: {refused:#}");
    }
}

/// The client (`before`: its options) starting `lectern mcp` (`who`: for whom) on `data`.
fn stdio(data: &Path, who: &[&str], before: &[&str]) -> Value {
    let dir = data.to_str().unwrap();
    let mut args: Vec<&str> = before.to_vec();
    args.extend([
        QUESTION,
        "--",
        env!("CARGO_BIN_EXE_lectern"),
        "--data-dir",
        dir,
        "mcp",
    ]);
    args.extend(who);
    mcp_client(&args)
}

/// Ada's workspace HR holding leave.md, made over the HTTP APIs; returns once it is indexed.
fn hr_workspace_of(url: &str, key: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let http = reqwest::Client::new();
    let client = lectern_api::Client::new(
        http.clone(),
        url,
        url,
        lectern_api::Auth::ApiKey(key.into()),
    );
    rt.block_on(async {
        wait_ready(&http, url).await;
        let ws = client.create_workspace("HR").await.unwrap();
        let texts = lectern_api::ingest::TextUpload {
            documents: vec![lectern_api::ingest::TextDocument {
                name: "leave.md".into(),
                text: LEAVE.into(),
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
}
