//! The ingest HTTP API over real HTTP, with the background workers, the real embedding
//! model and the embedded Qdrant engine, on SQLite and on PostgreSQL.

use std::time::Duration;

use lectern_core::Role;
use lectern_runtime::http::ErrorBody;
use lectern_store::testing::TestDatabase;
use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app_with};

pub(crate) fn test_doc(name: &str) -> Vec<u8> {
    let dir = std::env::var("LECTERN_TEST_DOCS_DIR")
        .expect("LECTERN_TEST_DOCS_DIR (run scripts/fetch-test-docs.sh, or scripts/test.sh)");
    std::fs::read(std::path::Path::new(&dir).join(name)).unwrap()
}

async fn json_of(res: reqwest::Response, status: u16) -> Value {
    let got = res.status().as_u16();
    let body = res.text().await.unwrap();
    assert_eq!(got, status, "{body}");
    serde_json::from_str(&body).unwrap_or(Value::Null)
}

async fn create_workspace(app: &TestApp, key: &str, name: &str) -> String {
    let res = app
        .request(Method::POST, "/v1/workspaces", key)
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    let body = json_of(res, 201).await;
    assert_eq!(body["role"], "owner");
    body["id"].as_str().unwrap().to_owned()
}

/// Polls the document list until nothing is queued or processing (the background
/// workers run on their own); a deadline, not a speed assertion.
async fn settled(app: &TestApp, key: &str, ws: &str) -> Vec<Value> {
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        let res = app
            .request(Method::GET, &format!("/v1/workspaces/{ws}/documents"), key)
            .send()
            .await
            .unwrap();
        let body = json_of(res, 200).await;
        let docs = body["documents"].as_array().unwrap().clone();
        if docs
            .iter()
            .all(|d| d["status"] == "ready" || d["status"] == "failed")
        {
            return docs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "documents did not settle: {docs:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn by_name<'a>(docs: &'a [Value], name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["file_name"] == name)
        .unwrap_or_else(|| panic!("no document {name} in {docs:#?}"))
}

async fn upload_list_reindex_and_delete(app: TestApp) {
    let (_, key) = app.user_with_key("owner@example.org").await;
    let ws = create_workspace(&app, &key, "Handbook").await;

    let pdf = test_doc("crazyones.pdf");
    let form = Form::new()
        .part("file", Part::bytes(pdf.clone()).file_name("crazyones.pdf"))
        .part(
            "file",
            Part::bytes(b"# Leave\n\nStaff get 30 days of annual leave.\n".to_vec())
                .file_name("leave.md"),
        )
        .part("file", Part::bytes(Vec::new()).file_name("empty.txt"))
        .part(
            "file",
            Part::bytes(b"secret".to_vec()).file_name("../../etc/passwd"),
        )
        .text("comment", "a plain field is ignored");
    let res = app
        .request(
            Method::POST,
            &format!("/v1/workspaces/{ws}/documents"),
            &key,
        )
        .multipart(form)
        .send()
        .await
        .unwrap();
    let body = json_of(res, 202).await;
    let outcomes: Vec<(&str, &str)> = body["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["file_name"].as_str().unwrap(),
                d["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(outcomes.len(), 4, "{body}");
    assert!(
        outcomes.contains(&("crazyones.pdf", "queued")),
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&("leave.md", "queued")), "{outcomes:?}");
    assert!(
        outcomes.contains(&("empty.txt", "rejected")),
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|(n, o)| n.contains("passwd") && *o == "rejected"),
        "{outcomes:?}"
    );

    let docs = settled(&app, &key, &ws).await;
    let pdf_doc = by_name(&docs, "crazyones.pdf");
    assert_eq!(pdf_doc["status"], "ready", "{pdf_doc}");
    assert_eq!(pdf_doc["pages"], 1);
    assert!(pdf_doc["chunks"].as_u64().unwrap() >= 1, "{pdf_doc}");
    let md = by_name(&docs, "leave.md");
    assert_eq!(md["status"], "ready", "{md}");
    assert_eq!(md["chunks"], 1);
    let empty = by_name(&docs, "empty.txt");
    assert_eq!(empty["status"], "failed");
    assert!(
        empty["error"].as_str().unwrap().contains("empty"),
        "{empty}"
    );
    let evil = docs
        .iter()
        .find(|d| d["file_name"].as_str().unwrap().contains("passwd"))
        .unwrap();
    assert!(
        evil["error"].as_str().unwrap().contains("path components"),
        "{evil}"
    );

    // The bytes refused under a bad name are welcome under a good one.
    let form = Form::new().part(
        "file",
        Part::bytes(b"secret".to_vec()).file_name("passwd.txt"),
    );
    let res = app
        .request(
            Method::POST,
            &format!("/v1/workspaces/{ws}/documents"),
            &key,
        )
        .multipart(form)
        .send()
        .await
        .unwrap();
    let body = json_of(res, 202).await;
    assert_eq!(body["documents"][0]["outcome"], "queued", "{body}");
    settled(&app, &key, &ws).await;

    // The same bytes again: nothing to do, and it says so.
    let form = Form::new().part("file", Part::bytes(pdf.clone()).file_name("crazyones.pdf"));
    let res = app
        .request(
            Method::POST,
            &format!("/v1/workspaces/{ws}/documents"),
            &key,
        )
        .multipart(form)
        .send()
        .await
        .unwrap();
    let body = json_of(res, 202).await;
    assert_eq!(body["documents"][0]["outcome"], "unchanged", "{body}");

    // The original comes back as uploaded.
    let doc_id = pdf_doc["id"].as_str().unwrap();
    let res = app
        .request(
            Method::GET,
            &format!("/v1/workspaces/{ws}/documents/{doc_id}/original"),
            &key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/pdf");
    assert_eq!(res.bytes().await.unwrap().as_ref(), pdf.as_slice());

    // Re-index: a new version with the same chunks; the old version's points go.
    let chunks_before = pdf_doc["chunks"].as_u64().unwrap();
    let res = app
        .request(
            Method::POST,
            &format!("/v1/workspaces/{ws}/documents/{doc_id}/reindex"),
            &key,
        )
        .send()
        .await
        .unwrap();
    let body = json_of(res, 202).await;
    assert_eq!(body["version"], 2, "{body}");
    let docs = settled(&app, &key, &ws).await;
    let pdf_doc = by_name(&docs, "crazyones.pdf");
    assert_eq!(pdf_doc["status"], "ready");
    assert_eq!(pdf_doc["version"], 2);
    assert_eq!(pdf_doc["chunks"].as_u64().unwrap(), chunks_before);
    let id: uuid::Uuid = doc_id.parse().unwrap();
    let ws_id: uuid::Uuid = ws.parse().unwrap();
    assert_eq!(
        app.search
            .index
            .count_document(ws_id, id, None)
            .await
            .unwrap() as u64,
        chunks_before,
        "one point per chunk of the current version only"
    );

    // Delete: gone from the list, the index and the disk.
    let res = app
        .request(
            Method::DELETE,
            &format!("/v1/workspaces/{ws}/documents/{doc_id}"),
            &key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = app
        .request(
            Method::GET,
            &format!("/v1/workspaces/{ws}/documents/{doc_id}"),
            &key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        app.search
            .index
            .count_document(ws_id, id, None)
            .await
            .unwrap(),
        0
    );
    assert!(!app.ctx.settings.originals_dir().join(doc_id).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_list_reindex_and_delete_on_sqlite() {
    upload_list_reindex_and_delete(spawn_app_with(|_| {}).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upload_list_reindex_and_delete_on_postgres() {
    let db = TestDatabase::postgres().await;
    let url = db.url.clone();
    upload_list_reindex_and_delete(spawn_app_with(|s| s.database.url = Some(url.into())).await)
        .await;
    drop(db);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_text_documents_are_ingested() {
    let app = spawn_app_with(|_| {}).await;
    let (_, key) = app.user_with_key("writer@example.org").await;
    let ws = create_workspace(&app, &key, "Notes").await;
    let res = app
        .request(Method::POST, &format!("/v1/workspaces/{ws}/documents"), &key)
        .json(&json!({"documents": [
            {"name": "policy.md", "text": "# Remote work\n\nEmployees may work remotely two days a week."},
            {"name": "page.html", "text": "<html><body><h1>Parking</h1><p>Parking is free for staff.</p><script>alert(1)</script></body></html>"}
        ]}))
        .send()
        .await
        .unwrap();
    let body = json_of(res, 202).await;
    assert_eq!(body["documents"].as_array().unwrap().len(), 2, "{body}");
    let docs = settled(&app, &key, &ws).await;
    for name in ["policy.md", "page.html"] {
        let d = by_name(&docs, name);
        assert_eq!(d["status"], "ready", "{d}");
        assert_eq!(d["chunks"], 1, "{d}");
    }
    assert_eq!(by_name(&docs, "page.html")["media_type"], "text/html");

    let res = app
        .request(
            Method::POST,
            &format!("/v1/workspaces/{ws}/documents"),
            &key,
        )
        .json(&json!({"documents": "not a list"}))
        .send()
        .await
        .unwrap();
    let body: ErrorBody = res.json().await.unwrap();
    assert_eq!(body.code, "invalid_input");
}

/// Uploads are streamed to disk, never held whole: a file over the size limit is refused
/// on its own and the file after it in the same form still lands; a request over the
/// whole-request cap is refused with 413, whether it declares its length or not; an
/// original downloads byte for byte; no temporary file is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_stream_to_disk_within_their_limits() {
    let app = spawn_app_with(|s| {
        s.ingest.max_file_mb = 1;
        s.ingest.workers = 0;
    })
    .await;
    let (_, key) = app.user_with_key("archivist@example.org").await;
    let ws = create_workspace(&app, &key, "Archive").await;
    let docs_path = format!("/v1/workspaces/{ws}/documents");

    // Text just under the limit (it arrives in many chunks), after a file just over it.
    let notes: Vec<u8> = (0..)
        .flat_map(|i| format!("Line {i} of the meeting notes.\n").into_bytes())
        .take(1_048_576 - 1000)
        .collect();
    let form = Form::new()
        .part(
            "file",
            Part::bytes(vec![b'x'; 1_048_577]).file_name("too-big.txt"),
        )
        .part("file", Part::bytes(notes.clone()).file_name("notes.txt"));
    let res = app
        .request(Method::POST, &docs_path, &key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let body = json_of(res, 202).await;
    let outcomes = body["documents"].as_array().unwrap();
    assert_eq!(outcomes.len(), 2, "{body}");
    let (big, small) = (&outcomes[0], &outcomes[1]);
    assert_eq!(big["file_name"], "too-big.txt", "{body}");
    assert_eq!(big["outcome"], "rejected", "{body}");
    assert_eq!(big["document"]["size_bytes"], 1_048_577, "{body}");
    assert!(
        big["document"]["error"]
            .as_str()
            .unwrap()
            .contains("over the limit of 1 MB"),
        "{body}"
    );
    assert_eq!(small["file_name"], "notes.txt", "{body}");
    assert_eq!(small["outcome"], "queued", "{body}");
    assert_eq!(
        small["document"]["size_bytes"],
        notes.len() as u64,
        "{body}"
    );

    // The original comes back as uploaded, streamed with its length.
    let doc = small["document"]["id"].as_str().unwrap();
    let res = app
        .request(Method::GET, &format!("{docs_path}/{doc}/original"), &key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-length"],
        notes.len().to_string().as_str()
    );
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    assert_eq!(res.headers()["content-security-policy"], "sandbox");
    assert_eq!(res.bytes().await.unwrap().as_ref(), notes.as_slice());

    // Over the cap as a whole (four files at the limit, plus 1 MiB): refused whether
    // the length is declared up front or only found while reading.
    let cap = lectern_api::ingest::upload_request_limit(1_048_576) as usize;
    let declared = Form::new().part(
        "file",
        Part::bytes(vec![b'y'; cap + 1]).file_name("huge.txt"),
    );
    let chunks = (cap + 65_536) / 65_536;
    let streamed = Form::new().part(
        "file",
        Part::stream(reqwest::Body::wrap_stream(futures::stream::iter(
            (0..chunks).map(|_| Ok::<_, std::io::Error>(vec![b'z'; 65_536])),
        )))
        .file_name("endless.txt"),
    );
    for (how, form) in [("declared", declared), ("streamed", streamed)] {
        let res = app
            .request(Method::POST, &docs_path, &key)
            .multipart(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{how}: no answer: {e}"));
        let body = json_of(res, 413).await;
        assert_eq!(body["code"], "too_large", "{how}: {body}");
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("send fewer files"),
            "{how}: {body}"
        );
    }
    let names: Vec<String> = app
        .ctx
        .store
        .list_documents(ws.parse().unwrap())
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.file_name)
        .collect();
    assert_eq!(
        names.len(),
        2,
        "nothing of the refused requests is listed: {names:?}"
    );

    let incoming = app.ctx.settings.originals_dir().join(".incoming");
    let left: Vec<_> = std::fs::read_dir(&incoming)
        .map(|dir| dir.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "temporary files left behind: {left:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_credentials_are_enforced() {
    let token = "a-service-token-of-at-least-32-characters";
    let app = spawn_app_with(|s| {
        s.server.service_token = Some(token.into());
        s.ingest.workers = 0;
    })
    .await;
    let (_, owner) = app.user_with_key("owner@example.org").await;
    let (viewer_id, viewer) = app.user_with_key("viewer@example.org").await;
    let (stranger_id, stranger) = app.user_with_key("stranger@example.org").await;
    let ws = create_workspace(&app, &owner, "Finance").await;
    app.ctx
        .store
        .set_member(ws.parse().unwrap(), viewer_id, Role::Viewer)
        .await
        .unwrap();
    let res = app
        .request(Method::POST, &format!("/v1/workspaces/{ws}/documents"), &owner)
        .json(&json!({"documents": [{"name": "budget.txt", "text": "The travel budget is 4000 euros."}]}))
        .send()
        .await
        .unwrap();
    let body = json_of(res, 202).await;
    let doc = body["documents"][0]["document"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let docs_path = format!("/v1/workspaces/{ws}/documents");
    let doc_path = format!("{docs_path}/{doc}");

    // A viewer lists and reads, but may not change anything.
    let res = app
        .request(Method::GET, &docs_path, &viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(
        json_of(res, 200).await["documents"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let res = app
        .request(Method::POST, &docs_path, &viewer)
        .json(&json!({"documents": [{"name": "x.txt", "text": "x"}]}))
        .send()
        .await
        .unwrap();
    let body: ErrorBody = serde_json::from_value(json_of(res, 403).await).unwrap();
    assert_eq!(body.code, "forbidden");
    assert!(body.message.contains("viewer"), "{}", body.message);
    for (method, path) in [
        (Method::DELETE, doc_path.clone()),
        (Method::POST, format!("{doc_path}/reindex")),
    ] {
        let res = app.request(method, &path, &viewer).send().await.unwrap();
        assert_eq!(res.status(), 403, "{path}");
    }

    // A non-member cannot tell the workspace or document exists.
    for path in [
        docs_path.clone(),
        doc_path.clone(),
        format!("{doc_path}/original"),
    ] {
        let res = app
            .request(Method::GET, &path, &stranger)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{path}");
        let body = res.text().await.unwrap();
        assert!(!body.contains("Finance"), "{body}");
    }
    let res = app
        .request(Method::DELETE, &doc_path, &stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .request(Method::GET, "/v1/workspaces", &stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(json_of(res, 200).await["workspaces"], json!([]));

    // A document id from another workspace is not found under this one.
    let other = create_workspace(&app, &stranger, "Elsewhere").await;
    let res = app
        .request(
            Method::GET,
            &format!("/v1/workspaces/{other}/documents/{doc}"),
            &stranger,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // Names are unique per owner: the stranger may have a "Finance" too, and taking their
    // own name twice tells them only that it is theirs, nothing of the owner's.
    let theirs = create_workspace(&app, &stranger, "Finance").await;
    assert_ne!(theirs, ws);
    let res = app
        .request(Method::POST, "/v1/workspaces", &stranger)
        .json(&json!({"name": "Finance"}))
        .send()
        .await
        .unwrap();
    let body: ErrorBody = serde_json::from_value(json_of(res, 409).await).unwrap();
    assert_eq!(body.code, "conflict");
    assert!(
        body.message.contains("you already have"),
        "{}",
        body.message
    );
    assert!(!body.message.contains(&ws), "{}", body.message);

    // No key, a wrong key, a key of a disabled user: 401.
    let res = app
        .client
        .get(format!("{}/v1/workspaces", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let body: ErrorBody = res.json().await.unwrap();
    assert_eq!(body.code, "unauthenticated");
    let res = app
        .request(Method::GET, "/v1/workspaces", "lk_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    app.ctx
        .store
        .set_user_disabled(stranger_id, true)
        .await
        .unwrap();
    let res = app
        .request(Method::GET, "/v1/workspaces", &stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "a disabled user's key stops working");
    app.ctx
        .store
        .set_user_disabled(stranger_id, false)
        .await
        .unwrap();

    // The service token acts for the user it names, with that user's rights.
    let res = app
        .request(Method::GET, &docs_path, token)
        .header("X-Lectern-User", viewer_id.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .request(Method::GET, &docs_path, token)
        .header("X-Lectern-User", stranger_id.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .request(Method::GET, &docs_path, token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "a service call must name its user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route() {
    let app = spawn_app_with(|s| s.ingest.workers = 0).await;
    let res = app.get("/v1/ingest/openapi.json").await;
    let doc = json_of(res, 200).await;
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/v1/workspaces",
        "/v1/workspaces/{ws}/documents",
        "/v1/workspaces/{ws}/documents/{doc}",
        "/v1/workspaces/{ws}/documents/{doc}/reindex",
        "/v1/workspaces/{ws}/documents/{doc}/original",
    ] {
        assert!(paths.contains_key(path), "{path} missing from {paths:?}");
    }
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
}
