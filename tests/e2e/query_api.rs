//! The query service end to end: a real two-column PDF ingested with the real embedding
//! model into the embedded Qdrant engine, answered by SmolLM2 through llama.cpp in
//! process (and, in the last test, through llama.cpp's own server on loopback).

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

const OTHER_FACT: &str = "# Reactor notes\n\nThe Zephyrine reactor at Lake Orwen is cooled with molten tin, and its coolant loop is inspected every 41 days.\n";

fn dev_qa_pdf(name: &str) -> Vec<u8> {
    let dir = std::env::var("LECTERN_DEV_QA_DIR")
        .expect("LECTERN_DEV_QA_DIR (run scripts/fetch-dev-qa.sh, or scripts/test.sh)");
    std::fs::read(std::path::Path::new(&dir).join(name)).unwrap()
}

async fn call(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.request(method, path, key);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn workspace_with(
    app: &TestApp,
    key: &str,
    name: &str,
    files: Vec<(&str, Vec<u8>)>,
) -> String {
    let (status, ws) = call(
        app,
        key,
        Method::POST,
        "/v1/workspaces",
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(status, 201, "{ws}");
    let ws = ws["id"].as_str().unwrap().to_owned();
    let mut form = reqwest::multipart::Form::new();
    for (file, bytes) in files {
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(file.to_owned()),
        );
    }
    let res = app
        .request(Method::POST, &format!("/v1/workspaces/{ws}/documents"), key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let deadline = std::time::Instant::now() + Duration::from_secs(600);
    loop {
        let (_, body) = call(
            app,
            key,
            Method::GET,
            &format!("/v1/workspaces/{ws}/documents"),
            None,
        )
        .await;
        let docs = body["documents"].as_array().unwrap();
        if docs.iter().all(|d| d["status"] == "ready") {
            break;
        }
        assert!(
            docs.iter().all(|d| d["status"] != "failed") && std::time::Instant::now() < deadline,
            "{body:#}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    ws
}

/// Every citation names a chunk of `ws` whose stored row has the cited page.
async fn assert_citations_resolve(app: &TestApp, ws: &str, answer: &Value) {
    let ws: uuid::Uuid = ws.parse().unwrap();
    for c in answer["citations"].as_array().unwrap() {
        let doc: uuid::Uuid = c["document_id"].as_str().unwrap().parse().unwrap();
        let row = app
            .ctx
            .store
            .document(doc)
            .await
            .unwrap()
            .expect("the cited document exists");
        assert_eq!(
            row.workspace_id, ws,
            "a citation left the asked workspace: {c}"
        );
        let chunks = app
            .ctx
            .store
            .chunks_of(doc, row.current_version)
            .await
            .unwrap();
        let chunk_id: uuid::Uuid = c["chunk_id"].as_str().unwrap().parse().unwrap();
        let chunk = chunks
            .iter()
            .find(|k| k.id == chunk_id)
            .expect("the cited chunk exists");
        assert_eq!(chunk.page_start as u64, c["page"].as_u64().unwrap(), "{c}");
        assert!(!c["quote"].as_str().unwrap().is_empty());
        let n = c["n"].as_u64().unwrap();
        assert!(
            answer["answer"]
                .as_str()
                .unwrap()
                .contains(&format!("[{n}]")),
            "citation {n} has its marker in the answer: {answer:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_are_answered_from_the_asked_workspace_only() {
    let app = spawn_app_with(|_| {}).await;
    let (_, key) = app.user_with_key("reader@example.org").await;
    let papers = workspace_with(
        &app,
        &key,
        "Papers",
        vec![("sample-sigconf.pdf", dev_qa_pdf("sample-sigconf.pdf"))],
    )
    .await;
    let other = workspace_with(
        &app,
        &key,
        "Other",
        vec![("reactor.md", OTHER_FACT.as_bytes().to_vec())],
    )
    .await;
    let other_doc = {
        let (_, body) = call(
            &app,
            &key,
            Method::GET,
            &format!("/v1/workspaces/{other}/documents"),
            None,
        )
        .await;
        body["documents"][0]["id"].as_str().unwrap().to_owned()
    };

    // Search: passages of the asked workspace, with document, page and score.
    let (status, found) = call(
        &app,
        &key,
        Method::POST,
        "/v1/search",
        Some(json!({
            "question": "Which typeface family does the acmart document class require?",
            "workspaces": [papers], "limit": 5
        })),
    )
    .await;
    assert_eq!(status, 200, "{found}");
    let passages = found["passages"].as_array().unwrap();
    assert!(!passages.is_empty());
    assert!(
        passages
            .iter()
            .all(|p| p["workspace_id"] == papers.as_str())
    );
    assert!(
        passages
            .iter()
            .all(|p| p["document"] == "sample-sigconf.pdf")
    );
    assert!(
        passages
            .iter()
            .take(3)
            .any(|p| p["text"].as_str().unwrap().contains("Libertine")),
        "the passage that answers is among the first three: {found:#}"
    );

    // Answer as Server-Sent Events: tokens, then the checked answer, then done.
    let res = app
        .request(Method::POST, "/v1/answer", &key)
        .header("Accept", "text/event-stream")
        .json(&json!({"question": "Which typeface family does the acmart document class require?", "workspaces": [papers]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let events: Vec<(String, String)> = lectern_api::sse::read(res.bytes_stream())
        .map(|f| f.map(|f| (f.event, f.data)).unwrap())
        .collect()
        .await;
    let names: Vec<&str> = events.iter().map(|(e, _)| e.as_str()).collect();
    let tokens = names.iter().filter(|n| **n == "token").count();
    assert!(tokens > 1, "the answer streams: {names:?}");
    assert_eq!(&names[names.len() - 2..], &["answer", "done"], "{names:?}");
    let answer: Value = serde_json::from_str(&events[events.len() - 2].1).unwrap();
    assert_eq!(answer["abstained"], false, "{answer:#}");
    assert!(!answer["passages"].as_array().unwrap().is_empty());
    assert!(
        answer["sentences"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s.get("supported").is_some())
    );
    assert!(answer["timings"]["first_token_ms"].as_u64().is_some());
    assert_citations_resolve(&app, &papers, &answer).await;
    let conversation = answer["conversation_id"].as_str().unwrap().to_owned();

    // A follow-up in the same conversation; it is stored with its citations.
    let (status, follow) = call(
        &app,
        &key,
        Method::POST,
        "/v1/answer",
        Some(json!({
            "question": "And which fonts must not be used with it?",
            "conversation_id": conversation
        })),
    )
    .await;
    assert_eq!(status, 200, "{follow}");
    assert_eq!(follow["conversation_id"], conversation.as_str());
    assert_ne!(
        follow["search_query"], "And which fonts must not be used with it?",
        "the follow-up was rewritten: {follow:#}"
    );
    let (_, stored) = call(
        &app,
        &key,
        Method::GET,
        &format!("/v1/conversations/{conversation}"),
        None,
    )
    .await;
    let messages = stored["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 4, "{stored:#}");
    assert_eq!(messages[1]["role"], "assistant");
    assert!(messages[1]["details"]["citations"].is_array());

    // The answer to this is only in the other workspace: never cited, never shown.
    let (status, isolated) = call(
        &app,
        &key,
        Method::POST,
        "/v1/answer",
        Some(json!({
            "question": "How is the Zephyrine reactor at Lake Orwen cooled?",
            "workspaces": [papers]
        })),
    )
    .await;
    assert_eq!(status, 200, "{isolated}");
    let text = isolated.to_string();
    assert!(
        !text.contains(&other_doc) && !text.contains("reactor.md") && !text.contains("molten tin"),
        "{isolated:#}"
    );
    assert_citations_resolve(&app, &papers, &isolated).await;

    // The same question on the other workspace finds it.
    let (_, there) = call(
        &app,
        &key,
        Method::POST,
        "/v1/search",
        Some(json!({
            "question": "How is the Zephyrine reactor at Lake Orwen cooled?", "workspaces": [other]
        })),
    )
    .await;
    assert_eq!(there["passages"][0]["document"], "reactor.md");

    // A question the documents cannot answer abstains and shows where to look.
    let (status, none) = call(
        &app,
        &key,
        Method::POST,
        "/v1/answer",
        Some(json!({
            "question": "What is a good recipe for banana bread with walnuts?",
            "workspaces": [papers]
        })),
    )
    .await;
    assert_eq!(status, 200, "{none}");
    assert_eq!(none["abstained"], true, "{none:#}");
    assert!(none["answer"].as_str().unwrap().contains("do not contain"));
    assert!(none["citations"].as_array().unwrap().is_empty());

    // Existing OpenAI clients work: the model is the workspace's name.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/clients/openai_client.py");
    let address = app.address.clone();
    let key2 = key.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("python3")
            .args([
                script,
                &format!("{address}/v1"),
                &key2,
                "Papers",
                "Which typeface family does the acmart document class require?",
            ])
            .output()
            .expect("python3")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "the openai client failed (scripts/test.sh installs it):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        client["models"]
            .as_array()
            .unwrap()
            .contains(&json!("Papers")),
        "{client:#}"
    );
    assert!(
        client["models"]
            .as_array()
            .unwrap()
            .contains(&json!("lectern"))
    );
    assert_eq!(
        client["unknown_model"]["raised"], "NotFoundError",
        "OpenAI's client parses Lectern's errors: {client:#}"
    );
    assert!(
        client["unknown_model"]["message"]
            .as_str()
            .unwrap()
            .contains("no-such-workspace"),
        "{client:#}"
    );
    assert!(
        !client["plain"]["content"].as_str().unwrap().is_empty(),
        "{client:#}"
    );
    assert!(
        ["stop", "length"].contains(&client["plain"]["finish_reason"].as_str().unwrap()),
        "{client:#}"
    );
    assert!(client["plain"]["citations"].is_array(), "{client:#}");
    assert!(
        client["plain"]["usage"]["completion_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        client["stream"]["pieces"].as_array().unwrap().len() > 1,
        "{client:#}"
    );
    assert!(
        ["stop", "length"].contains(&client["stream"]["finish_reason"].as_str().unwrap()),
        "{client:#}"
    );
    assert!(client["stream"]["citations"].is_array(), "{client:#}");
    for c in client["plain"]["citations"].as_array().unwrap() {
        assert_eq!(c["document"], "sample-sigconf.pdf");
    }

    // Another user sees none of it.
    let (_, stranger) = app.user_with_key("stranger@example.org").await;
    let (status, _) = call(
        &app,
        &stranger,
        Method::POST,
        "/v1/search",
        Some(json!({"question": "typeface", "workspaces": [papers]})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &app,
        &stranger,
        Method::GET,
        &format!("/v1/conversations/{conversation}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = call(
        &app,
        &stranger,
        Method::POST,
        "/v1/chat/completions",
        Some(json!({"model": "Papers", "messages": [{"role": "user", "content": "typeface?"}]})),
    )
    .await;
    assert_eq!(status, 404, "{body}");

    // Conversations can be deleted.
    let (status, _) = call(
        &app,
        &key,
        Method::DELETE,
        &format!("/v1/conversations/{conversation}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (_, list) = call(&app, &key, Method::GET, "/v1/conversations", None).await;
    let ids: HashSet<&str> = list["conversations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(conversation.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_come_from_an_openai_compatible_server_too() {
    let server = tokio::task::spawn_blocking(|| {
        lectern_llm::testing::LlamaServer::start(&lectern_llm::testing::smollm2_path(), 2, 2)
    })
    .await
    .unwrap();
    let base_url = server.base_url.clone();
    let app = spawn_app_with(move |s| {
        s.llm.backend = "openai".into();
        s.llm.base_url = Some(base_url);
        s.llm.model = Some("smollm2".into());
        s.llm.context_length = 4096;
    })
    .await;
    let (_, key) = app.user_with_key("remote@example.org").await;
    let ws = workspace_with(
        &app,
        &key,
        "Reactors",
        vec![("reactor.md", OTHER_FACT.as_bytes().to_vec())],
    )
    .await;
    let (status, answer) = call(
        &app,
        &key,
        Method::POST,
        "/v1/answer",
        Some(json!({
            "question": "How often is the coolant loop of the Zephyrine reactor inspected?",
            "workspaces": [ws]
        })),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["abstained"], false, "{answer:#}");
    assert!(answer["timings"]["completion_tokens"].as_u64().unwrap() > 0);
    assert_eq!(answer["passages"][0]["document"], "reactor.md");
    assert_citations_resolve(&app, &ws, &answer).await;
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_openapi_document_lists_every_route() {
    let app = spawn_app_with(|s| s.ingest.workers = 0).await;
    let res = app.get("/v1/query/openapi.json").await;
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    for path in [
        "/v1/search",
        "/v1/answer",
        "/v1/conversations",
        "/v1/conversations/{id}",
        "/v1/chat/completions",
        "/v1/models",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path}");
    }
}

/// Waits until every document of `ws` is ready (through the typed client).
async fn ready(api: &lectern_api::Client, ws: uuid::Uuid) {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let docs = api.documents(ws).await.unwrap();
        if docs.iter().all(|d| d.status == "ready") {
            return;
        }
        assert!(
            docs.iter().all(|d| d.status != "failed") && std::time::Instant::now() < deadline,
            "{docs:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversations_workspaces_bound_every_follow_up() {
    use lectern_api::ingest::{TextDocument, TextUpload};
    use lectern_api::query::AnswerBody;

    let app = spawn_app_with(|_| {}).await;
    let (_, key) = app.user_with_key("bound@example.org").await;
    let api = app.api(&key);
    let leave = api.create_workspace("Leave").await.unwrap();
    let reactor = api.create_workspace("Reactor").await.unwrap();
    for (ws, name, text) in [
        (
            leave.id,
            "leave.md",
            "# Leave\n\nStaff get 30 days of annual leave each calendar year.\n",
        ),
        (reactor.id, "reactor.md", OTHER_FACT),
    ] {
        let upload = TextUpload {
            documents: vec![TextDocument {
                name: name.into(),
                text: text.into(),
            }],
        };
        api.upload_texts(ws, &upload).await.unwrap();
        ready(&api, ws).await;
    }
    let reactor_question = "How often is the coolant loop of the Zephyrine reactor inspected?";

    // A conversation started in one workspace...
    let first = api
        .answer(&AnswerBody {
            question: "How many days of annual leave do staff get?".into(),
            workspaces: vec![leave.id],
            ..AnswerBody::default()
        })
        .await
        .unwrap();
    let conversation = api.conversation(first.conversation_id).await.unwrap();
    assert_eq!(conversation.conversation.workspaces, vec![leave.id]);

    // ...keeps every follow-up there, though the client names no workspace (which for a
    // new question means all of the caller's).
    let follow = api
        .answer(&AnswerBody {
            question: reactor_question.into(),
            conversation_id: Some(first.conversation_id),
            ..AnswerBody::default()
        })
        .await
        .unwrap();
    assert!(!follow.answer.passages.is_empty());
    assert!(
        follow
            .answer
            .passages
            .iter()
            .all(|p| p.workspace_id == leave.id),
        "a follow-up left its conversation's workspaces: {:?}",
        follow.answer.passages
    );

    // Naming another workspace in a follow-up is refused, saying why.
    let err = api
        .answer(&AnswerBody {
            question: reactor_question.into(),
            conversation_id: Some(first.conversation_id),
            workspaces: vec![reactor.id],
            ..AnswerBody::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_input", "{err}");
    assert!(err.to_string().contains("new conversation"), "{err}");

    // The same question as a new conversation searches both.
    let fresh = api
        .answer(&AnswerBody {
            question: reactor_question.into(),
            ..AnswerBody::default()
        })
        .await
        .unwrap();
    assert!(
        fresh
            .answer
            .passages
            .iter()
            .any(|p| p.workspace_id == reactor.id),
        "{:?}",
        fresh.answer.passages
    );
    assert_ne!(fresh.conversation_id, first.conversation_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_endpoints_answer_errors_in_openais_shape() {
    let app = spawn_app_with(|_| {}).await;
    let (_, key) = app.user_with_key("shape@example.org").await;
    let error_of = |v: &Value| {
        (
            v["error"]["type"].as_str().map(str::to_owned),
            v["error"]["message"].as_str().map(str::to_owned),
        )
    };
    // No key.
    let res = app
        .client
        .get(format!("{}/v1/models", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        error_of(&body).0.as_deref(),
        Some("authentication_error"),
        "{body}"
    );
    // An unknown model (workspace).
    let (status, body) = call(
        &app,
        &key,
        Method::POST,
        "/v1/chat/completions",
        Some(json!({"model": "nowhere", "messages": [{"role": "user", "content": "Hi?"}]})),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        error_of(&body).0.as_deref(),
        Some("not_found_error"),
        "{body}"
    );
    assert!(error_of(&body).1.unwrap().contains("nowhere"));
    // A body that is not a chat completion request.
    let (status, body) = call(
        &app,
        &key,
        Method::POST,
        "/v1/chat/completions",
        Some(json!({"messages": "not a list"})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        error_of(&body).0.as_deref(),
        Some("invalid_request_error"),
        "{body}"
    );
    // Lectern's own API keeps its own shape.
    let (status, body) = call(
        &app,
        &key,
        Method::POST,
        "/v1/answer",
        Some(json!({"question": ""})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "invalid_input", "{body}");

    // Bounds: a body too large is refused before it is read whole; too many messages or
    // too long a question are refused with the limit.
    let (status, body) = call(
        &app,
        &key,
        Method::POST,
        "/v1/answer",
        Some(json!({"question": "x".repeat(100_000)})),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["code"], "too_large", "{body}");
    let many: Vec<Value> = (0..101)
        .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": "hi"}))
        .collect();
    let (status, body) = call(
        &app,
        &key,
        Method::POST,
        "/v1/chat/completions",
        Some(json!({"model": "lectern", "messages": many})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        error_of(&body).1.unwrap().contains("at most 100 messages"),
        "{body}"
    );
    let (status, body) = call(
        &app,
        &key,
        Method::POST,
        "/v1/chat/completions",
        Some(json!({"model": "lectern", "messages": [{"role": "user", "content": "why ".repeat(2_000)}]})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        error_of(&body).1.unwrap().contains("4000 characters"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_over_its_rate_is_told_when_to_come_back() {
    // Behind a trusted proxy (this test), each client's address is its own.
    let app = spawn_app_with(|s| {
        s.server.rate_limit_per_minute = 6;
        s.server.rate_limit_burst = 3;
        s.web.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let (_, ada) = app.user_with_key("ada@example.org").await;
    let (_, bob) = app.user_with_key("bob@example.org").await;
    let get = |path: &'static str, key: String, from: &'static str| {
        app.request(Method::GET, path, &key)
            .header("x-forwarded-for", from)
            .send()
    };
    for _ in 0..3 {
        let res = get("/v1/workspaces", ada.clone(), "192.0.2.1")
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    // The fourth at once is over Ada's burst: refused before any work, with when to retry.
    let res = get("/v1/workspaces", ada.clone(), "192.0.2.1")
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=11).contains(&retry), "{retry}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["code"], "busy", "{body}");
    // The OpenAI-compatible routes refuse in OpenAI's shape.
    let res = get("/v1/models", ada.clone(), "192.0.2.1").await.unwrap();
    assert_eq!(res.status(), 429);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    // Made-up keys from the same address buy no more room.
    let res = get("/v1/workspaces", "made-up".into(), "192.0.2.1")
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    // Bob, elsewhere, has his own quota; the app's own files have none (nor the probes,
    // which the serve test counts, so they are not called here).
    let res = get("/v1/workspaces", bob.clone(), "192.0.2.2")
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for _ in 0..5 {
        let res = get("/static/app.css", ada.clone(), "192.0.2.1")
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
}
